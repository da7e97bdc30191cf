"""Fault episodes and their alarm lifecycle (acknowledgements, comments, shelvings) kept beside the readings."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from twin.history.interface import History, range_ms
from twin.history.schema import EPISODE_ORDER
from twin.readings import from_utc_ms, utc_ms

if TYPE_CHECKING:
    from twin.fault_episodes import AlarmComment, AlarmFilter, EpisodePage, FaultEpisode, Shelf


class FaultEpisodeStore:
    """Fault episodes kept in a history store's database, table ``fault_episodes``.

    One row per episode, keyed by (rule_id, asset_id, point_id, start_ms);
    ``end_ms`` is NULL while the episode is open, ``evidence`` is JSON text.
    :meth:`save` inserts or replaces by that key, so saving the same episode
    again (as a detector extends or closes it, or re-runs over the same
    history) never makes a second row. Works on every backend through the
    history store's public SQL primitives (its tables are made by the store's
    schema migrations, ``twin.history.schema``).

    Acknowledgements (who, when) live in a table of their own,
    ``fault_acknowledgements``, keyed like the episodes: adding it left the
    episodes table as it was, and a detector re-saving an episode never
    touches its acknowledgement. Comments on episodes (``alarm_comments``)
    and shelvings of alarms (``alarm_shelves``: rule, asset, point, who,
    when, until, why) are kept the same way, every row for the audit.

    The alarm console's listing (:meth:`page`) and the alarm count
    (:meth:`alarm_count`) filter, order and page in SQL on the indexes of
    the indexes of ``twin.history.schema``.
    """

    _COLUMNS = "rule_id, asset_id, point_id, start_ms, end_ms, priority, evidence, suppressed_by"
    _KEY = "rule_id, asset_id, point_id, start_ms"

    def __init__(self, history: History):
        self._history = history
        self._listeners: list[Callable[[list[FaultEpisode]], None]] = []
        self._param = history.param
        self._table, self._acks = history.table("fault_episodes"), history.table("fault_acknowledgements")
        self._comments, self._shelves = history.table("alarm_comments"), history.table("alarm_shelves")

    def save(self, episodes: Iterable[FaultEpisode]) -> int:
        """Insert or replace episodes (by rule, asset, point, start) in one transaction; returns how many.

        After the transaction, every listener (:meth:`listen`) is called with the episodes that were not
        stored before, in the order given; a listener that raises is logged and does not undo the save.
        """
        episodes = list(episodes)
        rows = [(e.rule_id, e.asset_id, e.point_id, utc_ms(e.start_utc),
                 None if e.end_utc is None else utc_ms(e.end_utc), int(e.priority),
                 json.dumps(e.evidence, sort_keys=True), e.suppressed_by) for e in episodes]
        if not rows:
            return 0
        p = self._param
        statement = (f"INSERT INTO {self._table} ({self._COLUMNS}) VALUES ({', '.join([p] * 8)}) "
                     "ON CONFLICT (rule_id, asset_id, point_id, start_ms) DO UPDATE SET "
                     "end_ms = excluded.end_ms, priority = excluded.priority, evidence = excluded.evidence, "
                     "suppressed_by = excluded.suppressed_by")
        new: list[FaultEpisode] = []

        with self._history.transaction():
            if self._listeners:
                exists = f"SELECT 1 FROM {self._table} AS e WHERE {self._key_match()}"
                new.extend(e for e, row in zip(episodes, rows) if not self._history.execute(exists, row[:4]))
            self._history.execute_many(statement, rows)
        for listener in self._listeners if new else ():
            try:
                listener(list(new))
            except Exception:
                logging.getLogger(__name__).exception("fault episode listener %r failed", listener)
        return len(rows)

    def listen(self, listener: Callable[[list[FaultEpisode]], None]) -> None:
        """Call ``listener`` with the new episodes of every later :meth:`save` (e.g. to notify people);
        called in the saving thread, so it must return quickly."""
        self._listeners.append(listener)

    def overlapping(self, start: datetime, end: datetime) -> list[FaultEpisode]:
        """Episodes active at some time in [start, end) (open ones included), ordered by start, rule, asset."""
        start_ms, end_ms = range_ms(start, end)
        p = self._param
        return self._select(f"e.start_ms < {p} AND (e.end_ms IS NULL OR e.end_ms > {p})", (end_ms, start_ms))

    def open_episodes(self) -> list[FaultEpisode]:
        """Episodes still active (no end), ordered by start, rule, asset."""
        return self._select("e.end_ms IS NULL", ())

    def acknowledge(self, episode_id: str, who: str, at_utc: datetime) -> FaultEpisode | None:
        """Record that ``who`` acknowledged the episode with this id (``FaultEpisode.id``) at ``at_utc``.

        The first acknowledgement stands: acknowledging again changes nothing.
        Returns the episode as stored afterwards (with who and when), None
        when no episode has that id.
        """
        key = _episode_key(episode_id)
        if key is None:
            return None
        p = self._param
        self._history.execute(
            f"INSERT INTO {self._acks} ({self._KEY}, acknowledged_by, acknowledged_ms) "
            f"SELECT {self._KEY}, {p}, {p} FROM {self._table} AS e WHERE {self._key_match()} "
            f"ON CONFLICT ({self._KEY}) DO NOTHING", (who, utc_ms(at_utc), *key))
        return self.episode(episode_id)

    def comment(self, episode_id: str, who: str, at_utc: datetime, text: str) -> AlarmComment | None:
        """Add ``who``'s comment ``text`` to the episode with this id; the comment, None when no episode has
        that id. Raises ValueError for an empty text."""
        from twin.fault_episodes import AlarmComment

        if not text.strip():
            raise ValueError("a comment needs some text")
        key = _episode_key(episode_id)
        if key is None or self.episode(episode_id) is None:
            return None
        p = self._param
        self._history.execute(
            f"INSERT INTO {self._comments} ({self._KEY}, who, ts_ms, body) VALUES ({', '.join([p] * 7)})",
            (*key, who, utc_ms(at_utc), text))
        return AlarmComment(episode_id, who, from_utc_ms(utc_ms(at_utc)), text)

    def comments(self, episode_ids: Sequence[str]) -> dict[str, list[AlarmComment]]:
        """The comments on each of these episodes, oldest first, by episode id (episodes without any absent)."""
        from twin.fault_episodes import AlarmComment

        keys = [key for key in map(_episode_key, episode_ids) if key is not None]
        if not keys:
            return {}
        p = self._param
        wanted = ", ".join([f"({p}, {p}, {p}, {p})"] * len(keys))  # a flat list: a page may ask for thousands
        rows = self._history.execute(
            f"SELECT rule_id, asset_id, point_id, start_ms, who, ts_ms, body FROM {self._comments} "
            f"WHERE ({self._KEY}) IN (VALUES {wanted}) ORDER BY seq",
            [value for key in keys for value in key])
        found: dict[str, list[AlarmComment]] = {}
        for rule_id, asset_id, point_id, start_ms, who, ts_ms, body in rows:
            episode_id = f"{rule_id}:{asset_id}:{point_id}:{start_ms}"
            found.setdefault(episode_id, []).append(AlarmComment(episode_id, who, from_utc_ms(ts_ms), body))
        return found

    def episode(self, episode_id: str) -> FaultEpisode | None:
        """The episode with this id (``FaultEpisode.id``), with its acknowledgement; None when there is none."""
        key = _episode_key(episode_id)
        found = self._select(self._key_match(), key) if key is not None else []
        return found[0] if found else None

    def rule_ids(self) -> list[str]:
        """Every rule with a stored episode, sorted."""
        return [row[0] for row in self._history.execute(
            f"SELECT DISTINCT rule_id FROM {self._table} ORDER BY rule_id")]

    def shelve(self, episode_id: str, who: str, at_utc: datetime, until_utc: datetime,
               reason: str) -> Shelf | None:
        """Shelve the alarm (rule, asset, point) of the episode with this id from ``at_utc`` until
        ``until_utc``, recording who and why; the shelf, None when no episode has that id. Raises ValueError
        for an empty reason or an end not after the start. Every shelving is kept (:meth:`shelf_log`)."""
        from twin.fault_episodes import Shelf

        if not reason.strip():
            raise ValueError("shelving needs a reason")
        if until_utc <= at_utc:
            raise ValueError(f"shelving until {until_utc.isoformat()} ends before it begins ({at_utc.isoformat()})")
        key = _episode_key(episode_id)
        if key is None or self.episode(episode_id) is None:
            return None
        p = self._param
        rule_id, asset_id, point_id, _ = key
        self._history.execute(
            f"INSERT INTO {self._shelves} (rule_id, asset_id, point_id, shelved_by, shelved_ms, until_ms, reason) "
            f"VALUES ({', '.join([p] * 7)})",
            (rule_id, asset_id, point_id, who, utc_ms(at_utc), utc_ms(until_utc), reason))
        return Shelf(rule_id, asset_id, point_id, who, from_utc_ms(utc_ms(at_utc)), from_utc_ms(utc_ms(until_utc)),
                     reason)

    def shelves(self, at_utc: datetime | None = None) -> list[Shelf]:
        """Shelvings in the order recorded: all of them (the audit), or those in force at ``at_utc``."""
        from twin.fault_episodes import Shelf

        where = ""
        params: tuple[int, ...] = ()
        if at_utc is not None:
            where, params = f" WHERE shelved_ms <= {self._param} AND until_ms > {self._param}", (utc_ms(at_utc),) * 2
        rows = self._history.execute(
            "SELECT rule_id, asset_id, point_id, shelved_by, shelved_ms, until_ms, reason "
            f"FROM {self._shelves}{where} ORDER BY seq", params)
        return [Shelf(rule_id, asset_id, point_id, who, from_utc_ms(shelved_ms), from_utc_ms(until_ms), reason)
                for rule_id, asset_id, point_id, who, shelved_ms, until_ms, reason in rows]

    def page(self, which: AlarmFilter, now_utc: datetime, offset: int = 0, limit: int = 50) -> EpisodePage:
        """The episodes ``which`` selects, newest start first, ``limit`` of them from ``offset`` on, and how
        many match in all. Filtered, ordered and paged by the database (on its indexes); ``now_utc`` decides
        which alarms are shelved."""
        from twin.fault_episodes import EpisodePage

        where, params = self._filter_sql(which, utc_ms(now_utc))
        (total,), = self._history.execute(f"SELECT count(*) FROM {self._table} AS e WHERE {where}",
                                      params)
        p = self._param
        episodes = self._select(where, (*params, limit, offset), newest_first=True, tail=f" LIMIT {p} OFFSET {p}")
        return EpisodePage(episodes, int(total), offset)

    def alarm_count(self, now_utc: datetime) -> int:
        """Alarms needing an operator now: active, unacknowledged, not shelved at ``now_utc``, not suppressed."""
        from twin.fault_episodes import AlarmFilter, AlarmState

        where, params = self._filter_sql(
            AlarmFilter(states=frozenset({AlarmState.ACTIVE, AlarmState.UNACKNOWLEDGED})), utc_ms(now_utc))
        where += f" AND e.suppressed_by IS NULL AND NOT {self._shelved_sql()}"
        (count,), = self._history.execute(f"SELECT count(*) FROM {self._table} AS e WHERE {where}",
                                      (*params, utc_ms(now_utc), utc_ms(now_utc)))
        return int(count)

    def _shelved_sql(self) -> str:
        """Condition: the alarm of episode ``e`` is shelved at a time given twice as parameters."""
        p = self._param
        return (f"EXISTS (SELECT 1 FROM {self._shelves} AS s WHERE s.rule_id = e.rule_id AND s.asset_id = e.asset_id "
                f"AND s.point_id = e.point_id AND s.shelved_ms <= {p} AND s.until_ms > {p})")

    def _filter_sql(self, which: AlarmFilter, now_ms: int) -> tuple[str, tuple]:
        """WHERE clause (table alias ``e``) and parameters selecting the episodes ``which`` asks for."""
        from twin.fault_episodes import AlarmState

        p = self._param
        clauses: list[str] = ["1 = 1"]
        params: list[int | str] = []
        if which.end_utc is not None:
            clauses.append(f"e.start_ms < {p}")
            params.append(utc_ms(which.end_utc))
        if which.start_utc is not None:
            clauses.append(f"(e.end_ms IS NULL OR e.end_ms > {p})")
            params.append(utc_ms(which.start_utc))
        for column, values in (("priority", sorted(int(v) for v in which.priorities)),
                               ("asset_id", sorted(which.asset_ids)), ("rule_id", sorted(which.rule_ids))):
            if values:
                clauses.append(f"e.{column} IN ({', '.join([p] * len(values))})")
                params.extend(values)
        acknowledged = (f"EXISTS (SELECT 1 FROM {self._acks} AS a WHERE a.rule_id = e.rule_id "
                        "AND a.asset_id = e.asset_id AND a.point_id = e.point_id AND a.start_ms = e.start_ms)")
        for state in sorted(which.states):
            if state is AlarmState.SHELVED:
                clauses.append(self._shelved_sql())
                params.extend((now_ms, now_ms))
            else:
                clauses.append({AlarmState.ACTIVE: "e.end_ms IS NULL", AlarmState.CLEARED: "e.end_ms IS NOT NULL",
                                AlarmState.UNACKNOWLEDGED: f"NOT {acknowledged}",
                                AlarmState.SUPPRESSED: "e.suppressed_by IS NOT NULL"}[state])
        return " AND ".join(clauses), tuple(params)

    def _key_match(self) -> str:
        """WHERE clause matching one episode of table alias ``e`` by (rule, asset, point, start_ms)."""
        return " AND ".join(f"e.{column.strip()} = {self._param}" for column in self._KEY.split(","))

    def _select(self, where: str, params: tuple, newest_first: bool = False, tail: str = "") -> list[FaultEpisode]:
        """Episodes (table alias ``e``) matching ``where``, each with its acknowledgement when there is one;
        oldest first (by start, rule, asset, point) or newest first; ``tail`` follows the ORDER BY."""
        from twin.fault_episodes import FaultEpisode, Priority

        columns = ", ".join(f"e.{c.strip()}" for c in self._COLUMNS.split(","))
        order = ", ".join(f"e.{c.strip()}{' DESC' if newest_first else ''}" for c in EPISODE_ORDER.split(","))
        rows = self._history.execute(
            f"SELECT {columns}, a.acknowledged_by, a.acknowledged_ms FROM {self._table} AS e "
            f"LEFT JOIN {self._acks} AS a ON a.rule_id = e.rule_id AND a.asset_id = e.asset_id "
            f"AND a.point_id = e.point_id AND a.start_ms = e.start_ms WHERE {where} "
            f"ORDER BY {order}{tail}", params)
        return [FaultEpisode(rule_id, asset_id, from_utc_ms(start_ms),
                             None if end_ms is None else from_utc_ms(end_ms), Priority(priority),
                             json.loads(evidence), point_id, suppressed_by, acked_by,
                             None if acked_ms is None else from_utc_ms(acked_ms))
                for (rule_id, asset_id, point_id, start_ms, end_ms, priority, evidence, suppressed_by, acked_by,
                     acked_ms) in rows]


def _episode_key(episode_id: str) -> tuple[str, str, str, int] | None:
    """(rule, asset, point, start_ms) of a ``FaultEpisode.id``; None when it is not one."""
    parts = episode_id.split(":")
    if len(parts) != 4 or not parts[0] or not parts[1]:
        return None
    try:
        return parts[0], parts[1], parts[2], int(parts[3])
    except ValueError:
        return None
