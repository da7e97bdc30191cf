"""The ``parktwin`` command line: the typer app of every command group (:mod:`parktwin.commands`) and
:func:`main`, its entry point. Exit codes: 0 ok, 1 failure, 2 bad input."""

from __future__ import annotations

import logging
import sys

import typer
from rich.markup import escape

from parktwin.commands import audit, devices, energy, model, plan, points, run, web
from parktwin.terminal import EXIT_BAD_INPUT, EXIT_FAILURE, BadInput, errors
from twin.config import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="ParkTwin: digital twin and energy management for industrial and technology parks.")
# commands first, then the groups: the order `parktwin --help` lists them in
for commands in (model.commands, run.commands, energy.commands, web.commands, plan.commands, audit.commands):
    app.add_typer(commands)
app.add_typer(web.users_group, name="users")
app.add_typer(devices.commands, name="devices")
app.add_typer(points.commands, name="points")


def main(argv: list[str] | None = None) -> None:
    """Entry point (``argv``: the arguments, default the process's): usage errors exit 2 (typer), bad files
    and values exit 2 with a plain message and no traceback; a history store that cannot be reached or
    written exits 1 with a plain message."""
    from twin.history import StorageUnavailable

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv)
    except (ConfigError, BadInput) as exc:
        # the message is plain text: patterns such as [a-z] in it are not rich markup
        errors.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(EXIT_BAD_INPUT)
    except StorageUnavailable as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(EXIT_FAILURE)


if __name__ == "__main__":
    main()
