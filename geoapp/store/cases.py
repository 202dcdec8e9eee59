"""Cases in SQL: the public's reports held for moderation (both backends), and the case indicators in PostgreSQL.

A report is a row of ``geoapp_reports``. Adding one counts the reports from the same (hashed) address in the last
hour and writes it with its audit row in one transaction, so that a burst from one place cannot pass the limit
between two servers. Accepting one writes the new case (a feature of the ``cases`` layer), the report's state and
both audit rows in one transaction: a report is never accepted without its case, nor a case made twice of it.

The indicators (``geoapp.cases.indicators`` says what each one counts) are one GROUP BY over the cases table, for
a layer too large to hold in memory (ten years of a city: a million cases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from geoapp.core.validate import prepare
from geoapp.errors import InvalidParameter, NotFound, TooManyAttempts, WrongStatus
from geoapp.store import tables
from geoapp.store.base import Actor, Feature
from geoapp.store.records import audit_row, now

CASES = "cases"
#: the columns a report is read by (its image is read on its own)
REPORT_COLUMNS = tuple(c.name for c in tables.reports.columns if c.name != "image")


def _report(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(REPORT_COLUMNS, row, strict=True))


class ReportSQL:
    """The public's reports, for a backend that has :class:`~geoapp.store.features.FeatureSQL` and Records."""

    def add_report(self, values: Mapping[str, Any], *, per_hour: int, since: str) -> dict[str, Any]:
        """Hold a new report (state pending); refuse it when its address sent ``per_hour`` since ``since``."""
        t = tables.reports
        with self._transaction() as conn:
            if self.dialect.name == "postgresql":  # two servers count one address one at a time
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (values["address"],))
            count = sa.select(sa.func.count()).select_from(t)
            count = count.where(t.c.address == values["address"], t.c.created_at > since)
            (sent,) = tables.run(conn, count, self.dialect).fetchone()
            if sent >= per_hour:
                raise TooManyAttempts(
                    f"at most {per_hour} reports an hour come from one place; try again later",
                    parameter="report",
                    retry_after=3600,
                )
            row = {**values, "state": "pending", "created_at": values.get("created_at") or now()}
            inserted = sa.insert(t).values(**row).returning(*(t.c[n] for n in REPORT_COLUMNS))
            added = _report(tables.run(conn, inserted, self.dialect).fetchone())
            changes = {"reference": [None, added["reference"]], "subcategory": [None, added["subcategory"]]}
            audit_row(conn, self.dialect, Actor("public", "anonymous"), "report_add", None, None, changes)
        return added

    def report(self, reference: str) -> dict[str, Any] | None:
        t = tables.reports
        with self._reading() as conn:
            statement = sa.select(*(t.c[n] for n in REPORT_COLUMNS)).where(t.c.reference == reference)
            row = tables.run(conn, statement, self.dialect).fetchone()
        return None if row is None else _report(row)

    def report_image(self, reference: str) -> tuple[str, bytes] | None:
        t = tables.reports
        with self._reading() as conn:
            statement = sa.select(t.c.media_type, t.c.image).where(t.c.reference == reference)
            row = tables.run(conn, statement, self.dialect).fetchone()
        return None if row is None or row[1] is None else (row[0], bytes(row[1]))

    def reports(self, state: str | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
        """Reports, oldest first (a moderation queue), of one state or every one."""
        t = tables.reports
        statement = sa.select(*(t.c[n] for n in REPORT_COLUMNS)).order_by(t.c.id).limit(limit)
        if state is not None:
            statement = statement.where(t.c.state == state)
        with self._reading() as conn:
            return [_report(row) for row in tables.rows(conn, statement, self.dialect)]

    def accept_report(
        self,
        reference: str,
        properties: Mapping[str, Any],
        geometry: BaseGeometry,
        *,
        public_text: str | None,
        actor: Actor,
    ) -> tuple[dict[str, Any], Feature]:
        """Make a pending report a case, in one transaction with both audit rows."""
        layer = self._layer(CASES)
        (record,), (geom,) = prepare(layer, [properties], [geometry], self.metric_crs)
        with self._write(CASES, [geom]) as conn:
            self._pending(conn, reference)
            fid = self._insert_row(conn, CASES, record, geom, 1)
            changes = {name: [None, v] for name, v in record.items() if v is not None}
            audit_row(conn, self.dialect, actor, "insert", CASES, fid, {**changes, "geometry": [None, geom.wkt]})
            self._moderate(conn, reference, "accepted", actor, public_text=public_text, case_fid=fid)
        return self.report(reference), Feature(CASES, fid, geom, record, 1)

    def reject_report(self, reference: str, reason: str, *, actor: Actor) -> dict[str, Any]:
        """Turn a pending report down, saying why (the reporter reads the reason)."""
        with self._transaction() as conn:
            self._pending(conn, reference)
            self._moderate(conn, reference, "rejected", actor, reason=reason)
        return self.report(reference)

    def _pending(self, conn: Any, reference: str) -> None:
        t = tables.reports
        statement = sa.select(t.c.state).where(t.c.reference == reference)
        if self.dialect.name == "postgresql":
            statement = statement.with_for_update()
        row = tables.run(conn, statement, self.dialect).fetchone()
        if row is None:
            raise NotFound(f"no report {reference[:40]!r}", parameter="reference")
        if row[0] != "pending":
            raise WrongStatus(f"report {reference} was moderated already ({row[0]})", parameter="reference")

    def _moderate(self, conn: Any, reference: str, state: str, actor: Actor, **values: Any) -> None:
        t = tables.reports
        update = sa.update(t).where(t.c.reference == reference, t.c.state == "pending")
        update = update.values(state=state, moderated_at=now(), moderated_by=actor.name, **values)
        if tables.run(conn, update, self.dialect).rowcount != 1:
            raise WrongStatus(f"report {reference} was moderated already", parameter="reference")
        changes = {"state": ["pending", state], **{k: [None, v] for k, v in values.items() if v is not None}}
        audit_row(
            conn,
            self.dialect,
            actor,
            f"report_{state}",
            CASES,
            values.get("case_fid"),
            {"reference": [None, reference], **changes},
        )


#: the SQL of one indicator row per group: due, disposed, closed, on time, mean hours 派遣 -> 处置
_INDICATORS = """
SELECT {key} AS key,
       count(*) AS due,
       count(*) FILTER (WHERE status = ANY(%(disposed)s)) AS disposed,
       count(*) FILTER (WHERE status = ANY(%(closed)s)) AS closed,
       count(*) FILTER (WHERE status = ANY(%(closed)s) AND disposed_at <= deadline_at) AS on_time,
       avg(extract(epoch FROM disposed_at - dispatched_at) / 3600.0)
           FILTER (WHERE status = ANY(%(disposed)s)) AS hours
FROM {table}
WHERE status = ANY(%(registered)s) AND registered_at IS NOT NULL {period}
GROUP BY 1 ORDER BY 1
"""
#: the groups, as SQL (a month is the month of 立案 on the district's clock, kept by the register step)
_KEYS = {"total": "''", "month": "coalesce(registered_month, '')"}


def indicator_sql(by: str, table: str, *, start: bool, end: bool) -> str:
    """The indicators' SELECT grouped by ``by`` (a checked dimension), with the period's bounds it takes."""
    if by not in _KEYS and not by.isidentifier():
        raise InvalidParameter(f"cannot group by {by!r}", parameter="by")
    key = _KEYS.get(by) or f"coalesce(\"{by}\", '')"
    period = (" AND registered_at >= %(start)s" if start else "") + (" AND registered_at < %(end)s" if end else "")
    return _INDICATORS.format(key=key, table=table, period=period)
