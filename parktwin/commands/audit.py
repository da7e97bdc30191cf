"""`parktwin audit`: the write audit log, every write attempt to a device point in a period."""

from __future__ import annotations

import sys
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from parktwin.options import FromOption, HistoryOption, ParkFile, ToOption, parse_period
from parktwin.park_files import history_url, open_history
from parktwin.terminal import local_minute
from twin.config import load_park

commands = typer.Typer()



@commands.command()
def audit(
    park_file: ParkFile,
    from_: FromOption,
    to: ToOption,
    history: HistoryOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON lines, one write per line")] = False,
) -> None:
    """Every write attempt to a device point in a period, accepted or refused, oldest first: time, who, point,
    value (or what was asked for when nothing was written), result."""
    import itertools

    from twin.history import WRITE_PAGE_SIZE

    park = load_park(park_file)
    start, end = parse_period(park, from_, to)
    zone = ZoneInfo(park.site.timezone)
    period = f"from {local_minute(start, park)} to {local_minute(end, park)} ({park.site.timezone})"
    with open_history(history_url(park, history)) as store:
        records = store.iter_write_records(start, end)  # page by page: a long range never sits in memory
        first_page = list(itertools.islice(records, WRITE_PAGE_SIZE))
        if not first_page:
            (sys.stderr if json_output else sys.stdout).write(f"no writes {period}\n")  # stdout stays JSON lines
            return
        if json_output:
            for record in itertools.chain(first_page, records):
                sys.stdout.write(_audit_json(record) + "\n")
            return
        header = (f"time ({park.site.timezone})", "who", "point", "value", "result")
        widths = [max(len(cell) for cell in column) for column in
                  zip(header, *(_audit_cells(record, zone) for record in first_page))]
        count = 0
        for cells in itertools.chain([header], (_audit_cells(r, zone) for r in itertools.chain(first_page, records))):
            # columns are as wide as the first page needs, so later pages print as they arrive
            sys.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() + "\n")
            count += 1
    sys.stdout.write(f"{count - 1:,} write(s) {period}\n")


def _audit_cells(record, zone: ZoneInfo) -> tuple[str, str, str, str, str]:
    """Table cells of one write record: local time to the millisecond, who, point, value (the number written,
    else what was asked for: relinquish, nan, inf, a text that is not a number), result."""
    local = record.ts_utc.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    value = record.requested if record.value is None else f"{record.value:g}"
    return local, record.who, record.point_id, value, record.result


def _audit_json(record) -> str:
    """One write record as a JSON line; a value JSON cannot hold (an infinity) becomes null."""
    import json
    import math

    value = record.value if record.value is not None and math.isfinite(record.value) else None
    return json.dumps({"ts_utc": record.ts_utc.isoformat(), "who": record.who, "point_id": record.point_id,
                       "value": value, "requested": record.requested, "result": record.result})

