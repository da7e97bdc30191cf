"""Test helpers for running parks on free ports, several side by side on one machine, and stopping them."""

from __future__ import annotations

import random
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

DEMO_PARK_DIR = Path(__file__).resolve().parents[1] / "examples" / "demo-park"


EPHEMERAL_PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_TEST_PORT = 10_000


def _ports_outside_the_ephemeral_range() -> range:
    """Ports the kernel never hands to an outgoing connection or a bind to port 0 (Linux: those come from
    ip_local_port_range, 32768-60999 by default), so a port picked here stays free until a server binds it,
    however many connections the suite opens meanwhile."""
    try:
        ephemeral_low = int(EPHEMERAL_PORT_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    return range(LOWEST_TEST_PORT, max(ephemeral_low, LOWEST_TEST_PORT + 1000))


def free_ports(count: int) -> list[int]:
    """``count`` different ports, each free for both TCP and UDP on 127.0.0.1 right now.

    They come from below the ephemeral range, in random order: a port the OS picked (bind to port 0) was
    taken by some client connection before the device server bound it, in one CI run of the suite. Every
    port stays bound until all are picked, so none is picked twice."""
    held: list[socket.socket] = []
    ports: list[int] = []
    candidates = list(_ports_outside_the_ephemeral_range())
    random.shuffle(candidates)
    try:
        for port in candidates:
            if len(ports) == count:
                break
            try:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    held.append(sock)
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use for TCP or UDP
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(ports) < count:
        raise RuntimeError(f"only {len(ports)} of {count} ports free below the ephemeral range")
    return ports


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now."""
    return free_ports(1)[0]


def copy_demo_park(folder: Path) -> Path:
    """Copy the demo park into folder with every point map moved to its own free port; return its park.yaml."""
    return copy_example_park(DEMO_PARK_DIR, folder)


def copy_example_park(park_dir: Path, folder: Path) -> Path:
    """Copy an example park's folder into folder with every point map moved to its own free port; return its
    park.yaml."""
    target = folder / park_dir.name
    shutil.copytree(park_dir, target)
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
