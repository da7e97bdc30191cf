"""Fixtures shared by every test room."""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

DEFAULT_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of the test PostgreSQL server with ``?schema=NAME`` naming a fresh schema, dropped after the test.

    Server: $PARKTWIN_TEST_POSTGRES, else DEFAULT_TEST_POSTGRES. Without a
    reachable server the test is skipped, except under CI=true, where it fails.
    """
    server = os.environ.get("PARKTWIN_TEST_POSTGRES", DEFAULT_TEST_POSTGRES)
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        params = conninfo_to_dict(server)
        where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
        reason = f"PostgreSQL test server {where} not reachable ({' '.join(str(exc).split())})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true, so PostgreSQL tests must run", pytrace=False)
        pytest.skip(f"{reason}; set PARKTWIN_TEST_POSTGRES to run them")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    separator = "&" if "?" in server else "?"
    try:
        yield f"{server}{separator}schema={schema}"
    finally:
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()


# ------------------------------------------------------------------ protocols: the demo park on free ports

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


@pytest.fixture
def demo_park_copy(tmp_path) -> Path:
    """The demo park on free device ports (see copy_demo_park)."""
    return copy_demo_park(tmp_path)
