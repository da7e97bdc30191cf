"""Test helpers for running parks on free ports, several side by side on one machine, and stopping them."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

DEMO_PARK_DIR = Path(__file__).resolve().parents[1] / "examples" / "demo-park"


def free_ports(count: int) -> list[int]:
    """``count`` different ports, each free for both TCP and UDP on 127.0.0.1 right now (the OS picks them).

    Every port stays bound until all are picked, so the OS cannot hand out one twice. It may to
    calls made one after another: 38 such picks (the demo park's devices) repeated a port in 15 of
    400 tries here, and two device servers then fought for one port."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(udp)
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken for UDP: keep the TCP socket bound so it is not picked again
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now."""
    return free_ports(1)[0]


def copy_demo_park(folder: Path) -> Path:
    """Copy the demo park into folder with every point map moved to its own free port; return its park.yaml."""
    target = folder / "demo-park"
    shutil.copytree(DEMO_PARK_DIR, target)
    map_files = sorted((target / "pointmaps").glob("*.yaml"))
    for map_file, port in zip(map_files, free_ports(len(map_files))):
        text = map_file.read_text(encoding="utf-8")
        text = re.sub(r"^port: \d+$", f"port: {port}", text, count=1, flags=re.MULTILINE)
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
