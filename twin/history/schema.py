"""The history store's schema version and its ordered migrations, the same for every backend.

Table ``schema_version`` holds one row: the version of the store's layout. Opening a store brings it up to
:data:`SCHEMA_VERSION` by running, in order, each migration above the version it has, each in one
transaction with the new version stamped in it. A store made before versions were kept has no
``schema_version`` table: it is version 0, and migration 1, which creates the layout of that time where it
is missing (``CREATE ... IF NOT EXISTS``), finds its tables in place and only stamps it.

- 1: points, readings, the write audit log, fault episodes with their acknowledgements, comments and
  alarm shelvings, and the alarm console's indexes (an episodes table from before alarm priorities has
  its severities renamed to priorities and gains ``suppressed_by``).
- 2: the write audit log keeps what each attempt asked for (``requested``): a refused NaN or infinity
  can be told from a relinquish.
- 3: each `parktwin run` keeps the speed of its clock (``twin.history.runs``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twin.history.audit import UNRECORDED, requested_text
from twin.history.interface import History

EPISODE_ORDER = "start_ms, rule_id, asset_id, point_id"
"""The order episodes are listed in (reversed for newest first), the columns of index fault_episodes_start."""

_ALARM_INDEXES = (
    ("fault_episodes", "fault_episodes_start", f"({EPISODE_ORDER})"),
    ("fault_episodes", "fault_episodes_priority", "(priority, start_ms)"),
    ("fault_episodes", "fault_episodes_asset", "(asset_id, start_ms)"),
    ("fault_episodes", "fault_episodes_rule_start", "(rule_id, start_ms)"),
    ("fault_episodes", "fault_episodes_open", "(start_ms) WHERE end_ms IS NULL"),
    ("alarm_comments", "alarm_comments_episode", "(rule_id, asset_id, point_id, start_ms)"),
    ("alarm_shelves", "alarm_shelves_alarm", "(rule_id, asset_id, point_id, until_ms)"),
)
"""Indexes (table, name, columns) of the alarm console's queries: newest first on their own, by priority, asset
or rule, the open episodes, and the comments and shelvings of an episode or alarm."""


def _version_1(store: History, core_tables: Sequence[str]) -> None:
    """The layout of the stores made before versions were kept (see the module notes)."""
    for statement in core_tables:
        store.execute(statement)
    audit = store.table("write_audit")
    store.execute(f"CREATE TABLE IF NOT EXISTS {audit} ({store.sequence_column}, ts_ms BIGINT NOT NULL, "
                  "who TEXT NOT NULL, point_id TEXT NOT NULL, value DOUBLE PRECISION, result TEXT NOT NULL)")
    store.execute(f"CREATE INDEX IF NOT EXISTS write_audit_time ON {audit} (ts_ms, seq)")
    episodes = store.table("fault_episodes")
    store.execute(f"""
        CREATE TABLE IF NOT EXISTS {episodes} (
            rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL,
            start_ms bigint NOT NULL, end_ms bigint, priority smallint NOT NULL, evidence text NOT NULL,
            suppressed_by text, PRIMARY KEY (rule_id, asset_id, point_id, start_ms))""")
    if "severity" in store.table_columns("fault_episodes"):
        # three severities (info, warning, critical) became the priorities low, medium and critical
        store.execute(f"ALTER TABLE {episodes} RENAME COLUMN severity TO priority")
        store.execute(f"UPDATE {episodes} SET priority = 4 WHERE priority = 3")
        store.execute(f"ALTER TABLE {episodes} ADD COLUMN suppressed_by text")
    store.execute(f"""
        CREATE TABLE IF NOT EXISTS {store.table("fault_acknowledgements")} (
            rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL,
            start_ms bigint NOT NULL, acknowledged_by text NOT NULL, acknowledged_ms bigint NOT NULL,
            PRIMARY KEY (rule_id, asset_id, point_id, start_ms))""")
    store.execute(f"""
        CREATE TABLE IF NOT EXISTS {store.table("alarm_comments")} ({store.sequence_column},
            rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL, start_ms bigint NOT NULL,
            who text NOT NULL, ts_ms bigint NOT NULL, body text NOT NULL)""")
    store.execute(f"""
        CREATE TABLE IF NOT EXISTS {store.table("alarm_shelves")} ({store.sequence_column},
            rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL, shelved_by text NOT NULL,
            shelved_ms bigint NOT NULL, until_ms bigint NOT NULL, reason text NOT NULL)""")
    for table_name, name, columns in _ALARM_INDEXES:
        store.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {store.table(table_name)} {columns}")


def _version_2(store: History, core_tables: Sequence[str]) -> None:
    """The write audit log keeps what was asked for; older rows without a value are marked unrecorded."""
    audit = store.table("write_audit")
    store.execute(f"ALTER TABLE {audit} ADD COLUMN requested text")
    p = store.param
    store.execute_many(f"UPDATE {audit} SET requested = {p} WHERE seq = {p}",
                       [(requested_text(value), seq) for seq, value in
                        store.execute(f"SELECT seq, value FROM {audit} WHERE value IS NOT NULL")])
    store.execute(f"UPDATE {audit} SET requested = {p} WHERE requested IS NULL", (UNRECORDED,))


def _version_3(store: History, core_tables: Sequence[str]) -> None:
    """The clock speed of each run from its start (``twin.history.runs``); older runs' speeds are unknown."""
    store.execute(f"CREATE TABLE IF NOT EXISTS {store.table('run_speeds')} "
                  "(start_ms bigint NOT NULL, speed double precision NOT NULL)")


MIGRATIONS: tuple[Callable[[History, Sequence[str]], None], ...] = (_version_1, _version_2, _version_3)
"""Migration n (1-based) brings a store from version n - 1 to version n."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The version of the layout this code reads and writes."""


def schema_version(store: History) -> int:
    """The store's schema version; 0 for a store made before versions were kept (or a new, empty one)."""
    if not store.table_columns("schema_version"):
        return 0
    rows = store.execute(f"SELECT max(version) FROM {store.table('schema_version')}")
    return int(rows[0][0] or 0)


def migrate(store: History, core_tables: Sequence[str]) -> int:
    """Bring the store up to :data:`SCHEMA_VERSION`; returns the version it had before.

    core_tables: the backend's ``CREATE TABLE IF NOT EXISTS`` statements of ``points`` and ``readings``
    (their column types differ between databases). Raises ValueError for a store newer than this code.
    """
    with store.transaction():
        store.execute(f"CREATE TABLE IF NOT EXISTS {store.table('schema_version')} (version integer NOT NULL)")
        found = schema_version(store)
    if found > SCHEMA_VERSION:
        raise ValueError(f"history {store.description} has schema version {found}, newer than this ParkTwin "
                         f"reads ({SCHEMA_VERSION}): upgrade ParkTwin to use it")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        with store.transaction():
            if schema_version(store) >= version:  # another process migrated it meanwhile
                continue
            MIGRATIONS[version - 1](store, core_tables)
            store.execute(f"DELETE FROM {store.table('schema_version')}")
            store.execute(f"INSERT INTO {store.table('schema_version')} (version) VALUES ({store.param})",
                          (version,))
    return found
