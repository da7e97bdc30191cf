"""Test helpers for running parks on free ports, several side by side on one machine, and stopping them."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

DEMO_PARK_DIR = Path(__file__).resolve().parents[1] / "examples" / "demo-park"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (the OS picks it)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def copy_demo_park(folder: Path) -> Path:
    """Copy the demo park into folder with every point map moved to a free port; return its park.yaml."""
    target = folder / "demo-park"
    shutil.copytree(DEMO_PARK_DIR, target)
    for map_file in sorted((target / "pointmaps").glob("*.yaml")):
        text = map_file.read_text(encoding="utf-8")
        text = re.sub(r"^port: \d+$", f"port: {free_port()}", text, count=1, flags=re.MULTILINE)
        map_file.write_text(text, encoding="utf-8")
    return target / "park.yaml"


def stop_with_ctrl_c(process: subprocess.Popen, timeout_s: float = 15) -> None:
    """Stop a `parktwin` process as a user would (Ctrl+C), killing it if it does not exit in time."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
