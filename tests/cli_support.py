"""The ``parktwin`` command line run in the test's own process, reported as a finished subprocess would be.

No interpreter start-up and no imports again for every command; what needs a process of its own (``parktwin
run``, ``parktwin devices serve``, signals, a kill) still starts one.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from parktwin.cli import main


@dataclass(frozen=True)
class CliResult:
    """Exit code, standard output and standard error of one command, as ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


def parktwin(*args: object) -> CliResult:
    """Run ``parktwin ARGS...`` here; an exception the command line lets escape fails the test with it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else 0 if exited.code is None else 1
    return CliResult(code, out.getvalue(), err.getvalue())
