"""Fixtures shared by every test room."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from park_copies import DEMO_PARK_DIR, copy_demo_park
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from receivers import SmtpReceiver, WebhookReceiver

from twin.config import load_park

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


@pytest.fixture(params=["sqlite", "postgres"])
def history_url(request, tmp_path) -> str:
    """A fresh history store's URL, once on a SQLite file and once on the test PostgreSQL server (postgres_url)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def demo_park():
    """The demo park's model (examples/demo-park/park.yaml)."""
    return load_park(DEMO_PARK_DIR / "park.yaml")


# ------------------------------------------------------------------ protocols: the demo park on free ports

@pytest.fixture
def demo_park_copy(tmp_path) -> Path:
    """The demo park on free device ports (see copy_demo_park)."""
    return copy_demo_park(tmp_path)


@pytest.fixture
def smtp():
    """A local SMTP server keeping the messages it accepts."""
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def hook():
    """A local HTTP receiver keeping the JSON bodies POSTed to it."""
    with WebhookReceiver() as receiver:
        yield receiver
