"""Readings and closures in SQL, written once for SQLite and PostgreSQL (mixed into both stores).

Readings are a time series in ``geoapp_readings``: storing one touches no layer, so no snapshot
is rebuilt and no map reloads. A batch is one transaction together with its audit row; a reading
sent again (same source, feature, kind and time) is counted as a duplicate and stored once
(``ON CONFLICT DO NOTHING``, which both databases say alike). ``geoapp_latest_readings`` keeps
each feature's newest reading of each kind in the same transaction, so the board reads a few
hundred rows, not the series.

A closure changes the feature's status field and keeps its record in ``geoapp_closures``, with
one audit row, in one transaction (the feature's row is locked: two commanders closing the same
underpass at once make one closure, not two).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geoapp.core.layers import Layer
from geoapp.errors import NotFound, VersionConflict
from geoapp.store.base import VERSION_COLUMN, Actor, Closure, Reading
from geoapp.store.features import quote
from geoapp.store.records import audit_row, now


def _key(r: Reading) -> tuple:
    return (r.layer, r.fid, r.kind, r.observed_ms, r.source)


#: the ``geoapp_meta`` key counting committed changes of readings and closures
FLOOD_VERSION = "flood_version"
_CLOSURE = "id, layer, fid, action, reason, closed_at, closed_by, reopened_at, reopened_by, reopen_reason"


class FloodSQL:
    """Readings and closures for a backend that has :class:`~geoapp.store.features.FeatureSQL` and Records."""

    mark: str

    # -- readings -------------------------------------------------------------------------------

    def add_readings(
        self,
        readings: Sequence[Reading],
        *,
        actor: Actor,
        received_ms: int,
        labels: Sequence[str] | None = None,
    ) -> tuple[int, int]:
        """Store a batch in one transaction with its audit row; return (stored, duplicates).

        A reading sent again with the same value is a duplicate; with another value it is refused (409, naming
        it by ``labels``: "readings[3]."), and so is the whole batch: a stored reading is never changed.
        """
        m = self.mark
        insert = (
            "INSERT INTO geoapp_readings (layer, fid, kind, value, observed_ms, source, received_ms) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}) "
            "ON CONFLICT (source, layer, fid, kind, observed_ms) DO NOTHING"
        )
        latest = (
            "INSERT INTO geoapp_latest_readings (layer, fid, kind, value, observed_ms, source) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}) ON CONFLICT (layer, fid, kind) DO UPDATE "
            "SET value = excluded.value, observed_ms = excluded.observed_ms, source = excluded.source "
            "WHERE excluded.observed_ms >= geoapp_latest_readings.observed_ms"
        )
        stored = 0
        labels = list(labels) if labels is not None else [""] * len(readings)
        # rows are locked in one order (feature, kind, time): two batches touching the same features cannot deadlock
        order = sorted(range(len(readings)), key=lambda i: _key(readings[i]))
        same = (
            f"SELECT value FROM geoapp_readings WHERE source = {m} AND layer = {m} AND fid = {m} AND kind = {m} "
            f"AND observed_ms = {m}"
        )
        with self._transaction() as conn:
            for i in order:
                r = readings[i]
                row = (r.layer, r.fid, r.kind, float(r.value), r.observed_ms, r.source)
                if conn.execute(insert, (*row, received_ms)).rowcount:
                    stored += 1
                    conn.execute(latest, row)
                    continue
                (kept,) = conn.execute(same, (r.source, r.layer, r.fid, r.kind, r.observed_ms)).fetchone()
                if kept != float(r.value):
                    raise VersionConflict(
                        f"{labels[i]}value: {r.source} reported {r.layer}/{r.fid} at this time as {kept:g} already; "
                        f"a reading is never changed (send a reading of a later time instead of {r.value:g})",
                        parameter=f"{labels[i]}value",
                    )
            duplicates = len(readings) - stored
            if stored:
                self._bump_flood_version(conn)
            layers = sorted({r.layer for r in readings})
            changes = {"readings": [None, stored], "duplicates": [None, duplicates], "layers": [None, layers]}
            audit_row(conn, self.dialect, actor, "readings", None, None, changes)
        return stored, duplicates

    def _bump_flood_version(self, conn: Any) -> None:
        """Count a committed change of readings or closures, in its transaction (commit order, whatever the ids)."""
        conn.execute(
            f"INSERT INTO geoapp_meta (key, value) VALUES ({self.mark}, '1') ON CONFLICT (key) DO UPDATE "
            "SET value = CAST(CAST(geoapp_meta.value AS BIGINT) + 1 AS TEXT)",
            (FLOOD_VERSION,),
        )

    def readings_mark(self) -> int:
        """What the board's data depends on besides the layers: a count of committed reading and closure changes
        (not the newest id: on PostgreSQL a reading with a lower id may commit after one with a higher)."""
        with self._reading() as conn:
            row = conn.execute(f"SELECT value FROM geoapp_meta WHERE key = {self.mark}", (FLOOD_VERSION,)).fetchone()
        return int(row[0]) if row else 0

    def latest_readings(self, kind: str) -> dict[tuple[str, int], tuple[float, int, str]]:
        """Each feature's newest reading of ``kind``: (layer, fid) -> (value, observed_ms, source)."""
        sql = f"SELECT layer, fid, value, observed_ms, source FROM geoapp_latest_readings WHERE kind = {self.mark}"
        with self._reading() as conn:
            return {(layer, fid): (value, at, source) for layer, fid, value, at, source in conn.execute(sql, (kind,))}

    def readings_before_latest(self, kind: str, before_ms: int) -> dict[tuple[str, int], tuple[float, int]]:
        """Each feature's newest reading of ``kind`` at least ``before_ms`` older than its newest one: (layer, fid)
        -> (value, observed_ms). One query for every feature (the index on the series finds each)."""
        m = self.mark
        sql = (
            "SELECT r.layer, r.fid, max(r.value), r.observed_ms FROM geoapp_readings r JOIN ("
            "SELECT l.layer, l.fid, (SELECT max(x.observed_ms) FROM geoapp_readings x WHERE x.layer = l.layer "
            f"AND x.fid = l.fid AND x.kind = l.kind AND x.observed_ms <= l.observed_ms - {m}) AS at "
            f"FROM geoapp_latest_readings l WHERE l.kind = {m}"
            f") ref ON r.layer = ref.layer AND r.fid = ref.fid AND r.observed_ms = ref.at WHERE r.kind = {m} "
            "GROUP BY r.layer, r.fid, r.observed_ms"
        )
        with self._reading() as conn:
            rows = conn.execute(sql, (before_ms, kind, kind)).fetchall()
        return {(layer, fid): (value, at) for layer, fid, value, at in rows}

    def earliest_since(self, kind: str, since_ms: int) -> dict[tuple[str, int], tuple[float, int]]:
        """Each feature's first reading of ``kind`` at or after ``since_ms`` (for a trend when none is older)."""
        m = self.mark
        sql = (
            "SELECT r.layer, r.fid, r.value, r.observed_ms FROM geoapp_readings r JOIN ("
            "SELECT layer, fid, min(observed_ms) AS first FROM geoapp_readings "
            f"WHERE kind = {m} AND observed_ms >= {m} GROUP BY layer, fid"
            ") f ON r.layer = f.layer AND r.fid = f.fid AND r.observed_ms = f.first "
            f"WHERE r.kind = {m}"
        )
        with self._reading() as conn:
            return {(layer, fid): (value, at) for layer, fid, value, at in conn.execute(sql, (kind, since_ms, kind))}

    def rain_totals(self, layer: str, until_ms: int, windows_ms: Sequence[int]) -> dict[int, list[float]]:
        """Each gauge's rain over each window ending at ``until_ms``: the largest total any one source reports
        (a gauge read by its logger and by hand is not counted twice)."""
        m = self.mark
        sums = ", ".join(f"SUM(CASE WHEN observed_ms > {m} THEN value ELSE 0 END)" for _ in windows_ms)
        sql = (
            f"SELECT fid, source, {sums} FROM geoapp_readings WHERE layer = {m} AND kind = 'rain_mm' "
            f"AND observed_ms > {m} AND observed_ms <= {m} GROUP BY fid, source"
        )
        params = [until_ms - w for w in windows_ms] + [layer, until_ms - max(windows_ms), until_ms]
        out: dict[int, list[float]] = {}
        with self._reading() as conn:
            for fid, _source, *totals in conn.execute(sql, params):
                best = out.setdefault(fid, [0.0] * len(windows_ms))
                out[fid] = [max(a, float(b or 0)) for a, b in zip(best, totals, strict=True)]
        return out

    def series(
        self, layer: str, fid: int, kind: str, since_ms: int, until_ms: int, points: int
    ) -> tuple[int, bool, list[tuple[int, float]]]:
        """A feature's readings of ``kind`` in [since, until]: (count, downsampled, [(observed_ms, value)]).

        More than ``points`` readings are downsampled in SQL to one per time bucket: the deepest water
        of the bucket (what matters for a depth), or the rain fallen in it (a sum per source, then the largest,
        as the board counts a gauge read twice: so totals stay right).
        """
        m = self.mark
        where = f"layer = {m} AND fid = {m} AND kind = {m} AND observed_ms >= {m} AND observed_ms <= {m}"
        params = (layer, fid, kind, since_ms, until_ms)
        with self._reading() as conn:
            count = conn.execute(f"SELECT count(*) FROM geoapp_readings WHERE {where}", params).fetchone()[0]
            if count <= points:
                rows = conn.execute(
                    f"SELECT observed_ms, value FROM geoapp_readings WHERE {where} ORDER BY observed_ms, id", params
                ).fetchall()
                return count, False, [(int(at), float(v)) for at, v in rows]
            width = max(1, -(-(until_ms - since_ms + 1) // points))
            value = "SUM(value)" if kind == "rain_mm" else "MAX(value)"
            # per source first: a gauge read by its logger and by hand is not counted twice (as in rain_totals)
            rows = conn.execute(
                "SELECT bucket, min(first), max(total) FROM ("
                f"SELECT (observed_ms - {m}) / {m} AS bucket, source, min(observed_ms) AS first, {value} AS total "
                f"FROM geoapp_readings WHERE {where} GROUP BY bucket, source"
                ") per_source GROUP BY bucket ORDER BY bucket",
                (since_ms, width, *params),
            ).fetchall()
        return count, True, [(int(at), float(v)) for _, at, v in rows]

    # -- closures -------------------------------------------------------------------------------

    def close_feature(
        self, layer: Layer, fid: int, *, action: str, field: str, closed: str, reason: str, actor: Actor
    ) -> Closure:
        """Close (or seal) a feature: its status field set to ``closed`` and the closure kept, with an audit row."""
        m = self.mark
        with self._write(layer.id, []) as conn:
            current = self._get(conn, layer, fid, lock=True)
            if current is None:
                raise NotFound(f"no feature {fid} in layer {layer.id}", parameter="feature_id")
            held = conn.execute(
                f"SELECT id FROM geoapp_closures WHERE layer = {m} AND fid = {m} AND reopened_at IS NULL",
                (layer.id, fid),
            ).fetchone()
            if held is not None:
                raise VersionConflict(
                    f"{layer.id}/{fid} is closed already (closure {held[0]}); reopen it first", parameter="feature_id"
                )
            at = now()
            changes: dict[str, list[Any]] = {"reason": [None, reason]}
            if current.properties.get(field) != closed:
                self._set_field(conn, layer, current, field, closed)
                changes[field] = [current.properties.get(field), closed]
            row = conn.execute(
                "INSERT INTO geoapp_closures (layer, fid, action, reason, closed_at, closed_by) "
                f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}) RETURNING {_CLOSURE}",
                (layer.id, fid, action, reason, at, actor.name),
            ).fetchone()
            audit_row(conn, self.dialect, actor, action, layer.id, fid, changes)
            self._bump_flood_version(conn)
        return Closure(*row)

    def reopen_closure(
        self, layer: Layer, closure_id: int, *, field: str, open_value: str, reason: str | None, actor: Actor
    ) -> Closure:
        """End a closure: the feature's status field back to ``open_value``, the reopening kept, an audit row."""
        m = self.mark
        with self._write(layer.id, []) as conn:
            found = self._closure(conn, closure_id)
            if found is None or found.layer != layer.id:
                raise NotFound(f"no closure {closure_id}", parameter="closure")
            current = self._get(conn, layer, found.fid, lock=True)
            found = self._closure(conn, closure_id)  # read again under the row's lock
            if not found.open:
                raise VersionConflict(
                    f"closure {closure_id} was reopened already ({found.reopened_at} by {found.reopened_by})",
                    parameter="closure",
                )
            changes: dict[str, list[Any]] = {"closure": [closure_id, None], "reason": [None, reason]}
            if current is not None and current.properties.get(field) != open_value:
                self._set_field(conn, layer, current, field, open_value)
                changes[field] = [current.properties.get(field), open_value]
            row = conn.execute(
                f"UPDATE geoapp_closures SET reopened_at = {m}, reopened_by = {m}, reopen_reason = {m} "
                f"WHERE id = {m} RETURNING {_CLOSURE}",
                (now(), actor.name, reason, closure_id),
            ).fetchone()
            audit_row(conn, self.dialect, actor, "reopen", layer.id, found.fid, changes)
            self._bump_flood_version(conn)
        return Closure(*row)

    def _set_field(self, conn: Any, layer: Layer, current, field: str, value: str) -> None:
        m = self.mark
        conn.execute(
            f"UPDATE {quote(layer.id)} SET {quote(field)} = {m}, {quote(VERSION_COLUMN)} = {m} WHERE fid = {m}",
            (value, current.version + 1, current.fid),
        )

    def _closure(self, conn: Any, closure_id: int) -> Closure | None:
        if not 0 < closure_id < 2**31:
            return None
        row = conn.execute(f"SELECT {_CLOSURE} FROM geoapp_closures WHERE id = {self.mark}", (closure_id,)).fetchone()
        return None if row is None else Closure(*row)

    def closure(self, closure_id: int) -> Closure | None:
        with self._reading() as conn:
            return self._closure(conn, closure_id)

    def closures(self, *, open_only: bool = True, layer: str | None = None, fid: int | None = None) -> list[Closure]:
        """Closures, newest first: those that hold (``open_only``), or all, maybe of one feature."""
        m = self.mark
        where, params = ["1 = 1"], []
        if open_only:
            where.append("reopened_at IS NULL")
        if layer is not None:
            where.append(f"layer = {m}")
            params.append(layer)
        if fid is not None:
            where.append(f"fid = {m}")
            params.append(fid)
        sql = f"SELECT {_CLOSURE} FROM geoapp_closures WHERE {' AND '.join(where)} ORDER BY id DESC"
        with self._reading() as conn:
            return [Closure(*row) for row in conn.execute(sql, params)]
