"""A PostgreSQL server of a test's own (initdb into a temporary folder, pg_ctl start and stop), on a free port of
127.0.0.1, so that a test can stop and restart it without touching the shared test server.

As root, the server runs as the ``postgres`` user (initdb refuses root). Without PostgreSQL's server programs
the tests that need one are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from park_copies import free_port


def _server_bin() -> Path | None:
    """Folder of initdb and pg_ctl: ``pg_config --bindir`` when it has them, else the newest
    /usr/lib/postgresql/*/bin; None when neither does."""
    candidates = []
    if shutil.which("pg_config"):
        candidates.append(Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                              check=True).stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


class ThrowawayPostgres:
    """One PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:``port`` with trust auth."""

    def __init__(self) -> None:
        bindir = _server_bin()
        if bindir is None:
            reason = "PostgreSQL server programs (initdb, pg_ctl) not found"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason}; CI=true, so PostgreSQL tests must run", pytrace=False)
            pytest.skip(reason)
        self._bindir = bindir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="parktwin-pg-"))
        self.data = self.folder / "data"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bindir / program), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "120", "-l", str(self.folder / "server.log"),
                  "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        """Stop the server at once (fast shutdown: open connections are cut, as in a restart)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "120", "-m", "fast", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def close(self) -> None:
        """Stop the server if it runs and delete its folder."""
        if self.running:
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
