"""The use cases of city management cases: collect, route to the grid, take the workflow's steps, list a queue.

Flask-free. Every change checks the caller's role for the step (``layers/cases/workflow.yaml``), that the case is in a
status the step starts from, and is written by the store with its audit row in one transaction (the audit row holds
the status before and after, the time stamped, the note and who took the step). A case created at a point is routed
to the unit grid cell that contains it and that cell's squad; a dispatcher may route it elsewhere with a reason,
which the audit row keeps. A squad sees and disposes of only the cases routed to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.cases import hotline, indicators
from geoapp.cases.geocode import Geocoder
from geoapp.cases.workflow import FIRST, LAYER, STATUS, Step, Workflow
from geoapp.core import permissions
from geoapp.core.editing import Editing
from geoapp.core.layers import DISTRICT_ZONE, utc_text
from geoapp.errors import Forbidden, InvalidFeature, InvalidParameter, NotFound, Unauthorized, WrongStatus
from geoapp.store.base import Actor, Feature, FeatureReader, Query, Store

GRID_LAYER = "grid_cells"
COVERS = "manhole_covers"
#: roles that may record a case (信息收集): the command centre, squads and administrators
COLLECT_ROLES = ("dispatcher", "squad")
#: roles that may read the case queues and indicators
READ_ROLES = ("dispatcher", "squad", "viewer", "planner", "commander")
MAX_NOTE = 500
#: a case number: the source's letters, the year reported (district time) and a serial
CODE_PREFIX = "AJ"


@dataclass(frozen=True)
class Route:
    """The grid cell that contains a point, its community and squad."""

    grid: str
    community: str | None
    squad: str | None


def _now_text(clock: Callable[[], float]) -> str:
    return utc_text(dt.datetime.fromtimestamp(clock(), dt.UTC))


def _properties(text: bytes) -> dict[str, Any]:
    feature = orjson.loads(text)
    return {**feature.get("properties", {}), "_fid": feature.get("id")}


class Cases:
    """Collect, route and step cases of a store for a caller."""

    def __init__(
        self,
        store: Store,
        reader: FeatureReader,
        editing: Editing,
        workflow: Workflow,
        *,
        clock: Callable[[], float],
    ):
        self.store = store
        self.reader = reader
        self.editing = editing
        self.workflow = workflow
        self.clock = clock
        self.layer = store.registry[LAYER]
        self._serial_lock = threading.Lock()
        #: (layer version, the largest serial of each year's prefix)
        self._largest: tuple[int | None, dict[str, int]] | None = None
        self._table = None

    # -- routing ------------------------------------------------------------------------------

    def route(self, lon: float, lat: float) -> Route | None:
        """The grid cell containing the point (the lowest code where it lies on a border), or None outside them."""
        point = shapely.Point(lon, lat)
        page = self.reader.select(GRID_LAYER, Query(bbox=(lon, lat, lon, lat)), 0, 50, "internal")
        found = []
        for text in page.features:
            feature = orjson.loads(text)
            geometry = shapely.geometry.shape(feature["geometry"]) if feature.get("geometry") else None
            if geometry is not None and geometry.covers(point):
                props = feature["properties"]
                found.append(Route(props.get("code"), props.get("community"), props.get("squad")))
        return min(found, key=lambda r: r.grid or "") if found else None

    # -- collecting ---------------------------------------------------------------------------

    def collect(
        self, actor: Actor, properties: Mapping[str, Any], geometry: BaseGeometry, *, trusted: bool = False
    ) -> Feature:
        """Record a case (信息收集) at a point: numbered, routed to its grid cell and squad, its class's department.

        ``trusted`` is for the use cases that have checked the caller themselves (a public report accepted by
        a moderator, an import).
        """
        (feature,) = self.collect_many(actor, [(properties, geometry)], trusted=trusted)
        return feature

    def collect_many(
        self,
        actor: Actor,
        items: Sequence[tuple[Mapping[str, Any], BaseGeometry]],
        *,
        trusted: bool = False,
        note: Mapping[str, Any] | None = None,
    ) -> list[Feature]:
        """Record many cases in one transaction (a hotline import, with ``note``): all of them or none."""
        if not trusted:
            permissions.require_role(actor, COLLECT_ROLES)
        prepared = self.prepare(items)
        if note is not None:
            self.numbered(prepared, lambda p: self.store.apply_import(LAYER, p, [], actor=actor, note=note))
            return []
        return self.numbered(prepared, lambda p: self.store.insert_many(LAYER, p, actor=actor))

    def prepare(
        self, items: Sequence[tuple[Mapping[str, Any], BaseGeometry]]
    ) -> list[tuple[dict[str, Any], BaseGeometry]]:
        """New cases as the workflow starts them: collected, of their class's department, routed, the time reported
        (now unless given), a manhole-cover case naming the cover nearest to it; inside the district."""
        now = _now_text(self.clock)
        prepared = []
        for i, (properties, geometry) in enumerate(items):
            if not isinstance(properties, Mapping):
                raise InvalidParameter("properties must be an object of field values", parameter="properties")
            if not isinstance(geometry, shapely.Point) or geometry.is_empty:
                raise InvalidFeature("a case is placed at a point", parameter="geometry")
            self.editing._check_inside_district(self.layer, geometry, i if len(items) > 1 else None)
            props = {k: v for k, v in properties.items() if k not in self._owned}
            props.setdefault("reported_at", now)
            props[STATUS] = FIRST
            cls = self.workflow.classes.get(props.get("subcategory"))
            if cls is not None:
                props.update(category=cls.category, kind=cls.kind, department=cls.department)
            if props.get("subcategory") == "manhole_cover" and not props.get("component_code"):
                props["component_code"] = self._nearest_cover(geometry)
            route = self.route(geometry.x, geometry.y)
            if route is not None:
                props.update(grid=route.grid, community=route.community, squad=route.squad)
            prepared.append((props, geometry))
        return prepared

    def numbered(self, prepared: list[tuple[dict[str, Any], BaseGeometry]], write: Callable[[list], Any]) -> Any:
        """Give prepared cases their numbers and write them with ``write`` (one transaction of the store's)."""
        with self._serial_lock:
            largest: dict[int, int] = {}
            for props, _ in prepared:
                props["code"] = self._next_code(props, largest)
            written = write(prepared)
            # the numbers just given are the largest now, at the version the write moved the layer to
            known = self._largest[1] if self._largest else {}
            self._largest = (self.reader.versions().get(LAYER), {**known, **_prefixed(largest)})
            return written

    def _nearest_cover(self, point: shapely.Point, within_m: float = 30.0) -> str | None:
        """The code of the manhole cover nearest the point, if one lies within ``within_m`` (一盖一台账)."""
        if COVERS not in self.store.registry:
            return None
        page = self.reader.select(COVERS, Query(near=(point.x, point.y, within_m)), 0, 1, "internal")
        return orjson.loads(page.features[0])["properties"].get("code") if page.features else None

    #: fields only the workflow sets: a caller's value is ignored
    _owned = frozenset(
        {
            "code",
            STATUS,
            "grid",
            "community",
            "squad",
            "registered_at",
            "registered_month",
            "dispatched_at",
            "disposed_at",
        }
        | {"verified_at", "closed_at", "deadline_at", "routing", "last_note", "department", "category", "kind"}
    )

    def _next_code(self, props: Mapping[str, Any], largest: dict[int, int]) -> str:
        """The next case number of the year the case was reported (district time)."""
        reported = dt.datetime.fromisoformat(utc_text(props["reported_at"])).astimezone(DISTRICT_ZONE)
        prefix = f"{CODE_PREFIX}{reported.year}-"
        if reported.year not in largest:
            largest[reported.year] = self._largest_serial(prefix)
        largest[reported.year] += 1
        return f"{prefix}{largest[reported.year]:07d}"

    def _largest_serial(self, prefix: str) -> int:
        """The largest serial of the year's case numbers, read once per version of the layer (this process's own
        inserts carry it forward; another's move the version and it is read again)."""
        version = self.reader.versions().get(LAYER)
        if self._largest is None or self._largest[0] != version:
            largest: dict[str, int] = {}
            for props in self._all(Query()):
                code = props.get("code") or ""
                head, _, serial = code.rpartition("-")
                if serial.isdigit():
                    largest[f"{head}-"] = max(largest.get(f"{head}-", 0), int(serial))
            self._largest = (version, largest)
        return self._largest[1].get(prefix, 0)

    def _all(self, query: Query, layer: str = LAYER) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.reader.select(layer, query, offset, 10_000, "internal")
            rows += [_properties(t) for t in page.features]
            offset += len(page.ids)
            if not page.more or not page.ids:
                return rows

    # -- the steps ----------------------------------------------------------------------------

    def case(self, actor: Actor, fid: int) -> Feature:
        """One case as staff see it (a squad only its own), or NotFound."""
        permissions.require_role(actor, READ_ROLES)
        found = self.reader.get(LAYER, fid, "internal")
        if found is None or not self._sees(actor, found.properties):
            raise NotFound(f"no case {fid}", parameter="fid")
        return found

    def steps_for(self, actor: Actor, case: Feature) -> list[Step]:
        """The steps this caller may take on ``case`` now."""
        return [s for s in self.workflow.steps_from(case.properties.get(STATUS)) if self._may(actor, s, case)]

    def step(
        self,
        actor: Actor,
        fid: int,
        step_id: str,
        *,
        version: int,
        note: str | None = None,
        squad: str | None = None,
    ) -> Feature:
        """Take a step of the workflow on case ``fid`` at the ``version`` the caller read.

        ``dispatch`` takes ``squad`` to route the case to another squad than its grid cell's; then the note
        (why) is required and kept in the case's routing note and its audit row.
        """
        if actor is None or getattr(actor, "kind", None) == "anonymous":
            raise Unauthorized("sign in to work on cases", parameter="Authorization")
        step = self.workflow.step(step_id)
        if step is None:
            known = ", ".join(s.id for s in self.workflow.steps)
            raise InvalidParameter(f"unknown step {str(step_id)[:40]!r}; steps: {known}", parameter="step")
        case = self.reader.get(LAYER, fid, "internal")
        if case is None or not self._sees(actor, case.properties):
            raise NotFound(f"no case {fid}", parameter="fid")
        if not self._may(actor, step, case):
            raise Forbidden(f"the step {step.id} needs one of the roles: {', '.join(step.roles)}", parameter="role")
        status = case.properties.get(STATUS)
        if status not in step.from_:
            raise WrongStatus(
                f"case {case.properties.get('code')} is {status}; {step.id} applies to a case that is "
                f"{' or '.join(step.from_)}",
                parameter="step",
            )
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise InvalidParameter(f"a note may have at most {MAX_NOTE} characters", parameter="note")
        override = squad is not None and squad != case.properties.get("squad")
        if squad is not None and step.id != "dispatch":
            raise InvalidParameter("only dispatch routes a case to a squad", parameter="squad")
        if (step.note or override) and note is None:
            what = "why it goes to another squad than its grid cell's" if override else "a note of what was done"
            raise InvalidParameter(f"the step {step.id} needs {what}", parameter="note")
        now = _now_text(self.clock)
        changes: dict[str, Any] = {STATUS: step.to, "last_note": note}
        if step.stamp:
            changes[step.stamp] = now
        for name in step.clear:
            changes[name] = None
        if step.id == "register":
            changes["deadline_at"] = self._deadline(case.properties, now)
            # the month of 立案 on the district's clock, kept with the case: the indicators group by it
            changes["registered_month"] = dt.datetime.fromisoformat(now).astimezone(DISTRICT_ZONE).strftime("%Y-%m")
        if override:
            if squad not in self.squads():
                raise InvalidParameter(
                    f"no squad {squad[:40]!r}; squads: {', '.join(self.squads())}", parameter="squad"
                )
            changes.update(squad=squad, routing=f"{case.properties.get('squad') or '—'} → {squad}: {note}")
        return self.store.update(LAYER, fid, changes, None, expected_version=version, actor=actor)

    def _deadline(self, props: Mapping[str, Any], registered: str) -> str | None:
        cls = self.workflow.classes.get(props.get("subcategory"))
        if cls is None:
            return None
        start = dt.datetime.fromisoformat(registered)
        return utc_text(start + dt.timedelta(hours=cls.hours))

    def _may(self, actor: Actor, step: Step, case: Feature) -> bool:
        roles = frozenset(getattr(actor, "roles", None) or ())
        if "admin" in roles:
            return True
        if "squad" in step.roles and "squad" in roles:
            return case.properties.get("squad") in permissions.squads_of(actor)
        return bool(roles & set(step.roles))

    def _sees(self, actor: Actor, props: Mapping[str, Any]) -> bool:
        roles = frozenset(getattr(actor, "roles", None) or ())
        if roles & {"admin", "dispatcher", "viewer", "planner", "commander"}:
            return True
        return "squad" in roles and props.get("squad") in permissions.squads_of(actor)

    def squads(self) -> list[str]:
        """Every squad the grid cells name."""
        return sorted({p.get("squad") for p in self._all(Query(), GRID_LAYER)} - {None, ""})

    # -- the hotline ---------------------------------------------------------------------------

    def import_hotline(
        self,
        actor: Actor,
        path,
        *,
        name: str | None = None,
        min_confidence: float = 0.5,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Import a 12345 hotline XLSX: every ticket geocoded on the road network; the located ones recorded as
        cases (collected, source hotline, the address and the match's confidence kept) in one transaction, a
        ticket imported before skipped; the rows not read and the tickets not located reported, with why."""
        permissions.require_role(actor, ("dispatcher",))
        if not 0 < min_confidence <= 1:
            raise InvalidParameter("min_confidence must be above 0 and at most 1", parameter="min_confidence")
        batch = hotline.read_hotline(path, name=name)
        geocoder = Geocoder.from_reader(self.reader, self.store.metric_crs)
        located, unlocated = hotline.locate(batch, geocoder, min_confidence)
        known = {p.get("ticket") for p in self._all(Query(filters={"source": ["hotline"]}))} - {None}
        fresh = []
        for row, found in located:
            if row.ticket in known:
                continue
            if row.subcategory == "manhole_cover" and self._nearest_cover(shapely.Point(found.lon, found.lat)) is None:
                # 一盖一台账: a cover's case names its cover; with none near the address, a person must place it
                unlocated.append((row, dataclasses.replace(found, reason="no_cover_nearby")))
                continue
            fresh.append((row, found))
        located = [(row, found) for row, found in located if (row, found) in fresh or row.ticket in known]
        items = [
            (
                {
                    "subcategory": row.subcategory,
                    "source": "hotline",
                    "details": row.description or row.category or row.address,
                    "address": row.address,
                    "ticket": row.ticket,
                    "geocode_confidence": round(found.confidence, 2),
                    "reported_at": row.received_at,
                },
                shapely.Point(found.lon, found.lat),
            )
            for row, found in fresh
        ]
        report = {
            "rows": len(batch.rows) + len(batch.problem_rows),
            "located": len(located),
            "imported": 0 if dry_run else len(items),
            "already_imported": [row.ticket for row, _ in located if row.ticket in known],
            "unlocated": [
                {
                    "row": row.row,
                    "ticket": row.ticket,
                    "address": row.address,
                    "reason": found.reason,
                    "confidence": round(found.confidence, 2),
                    "method": found.method,
                }
                for row, found in unlocated
            ],
            "problems": [p.__dict__ for p in batch.problems],
        }
        if items and not dry_run:
            note = {
                "file": name or str(path),
                "source": "hotline",
                "rows": report["rows"],
                "imported": len(items),
                "unlocated": len(unlocated),
                "problems": len(batch.problems),
            }
            self.collect_many(actor, items, note=note)
        return report

    # -- indicators ---------------------------------------------------------------------------

    def indicators(
        self,
        actor: Actor,
        by: str | None = None,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[indicators.Indicator]:
        """The workflow's indicators of the cases registered in [start, end), grouped ``by`` a dimension: in SQL
        where the database answers the layer (a large one), else over the rows in memory."""
        permissions.require_role(actor, READ_ROLES)
        by = indicators.dimension(by)
        if getattr(self.reader, "answers_in_sql", lambda _: False)(LAYER) and hasattr(self.store, "case_indicators"):
            statuses = {"registered": self.workflow.registered, "disposed": self.workflow.disposed}
            statuses["closed"] = self.workflow.closed
            rows = self.store.case_indicators(by, statuses, start=start and utc_text(start), end=end and utc_text(end))
            return [indicators.indicator(None if by == "total" or not k else k, *rest) for k, *rest in rows]
        return indicators.compute(self.table(), self.workflow, by, start=start, end=end)

    def hot_spots(self, actor: Actor, as_of: dt.datetime) -> list[indicators.HotSpot]:
        permissions.require_role(actor, READ_ROLES)
        return indicators.hot_spots(self.table(), self.workflow, as_of)

    def table(self):
        """The cases' indicator columns as a frame, read once per version of the layer."""
        version = self.reader.versions().get(LAYER)
        cached = self._table
        if cached is None or cached[0] != version:
            cached = self._table = (version, indicators.frame(self._all(Query())))
        return cached[1]

    # -- queues -------------------------------------------------------------------------------

    def queue(self, actor: Actor, *, squad: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """The open cases waiting on the caller: a squad's dispatched cases; the centre's collected, registered and
        disposed ones (or a squad's queue, with ``squad``). Oldest deadline first, then oldest report."""
        permissions.require_role(actor, READ_ROLES)
        roles = frozenset(getattr(actor, "roles", None) or ())
        mine = permissions.squads_of(actor)
        if squad is None and "squad" in roles and not roles & {"admin", "dispatcher"}:
            if not mine:
                raise Forbidden("a squad member's account names the squad (squad:<name>)", parameter="role")
            squads = sorted(mine)
        elif squad is not None:
            if "squad" in roles and not roles & {"admin", "dispatcher", "viewer"} and squad not in mine:
                raise Forbidden(f"a squad sees its own queue, not {squad[:40]!r}'s", parameter="squad")
            squads = [squad]
        else:
            squads = None
        if squads is not None:
            query = Query(filters={"squad": squads, STATUS: ["dispatched"]})
        else:
            query = Query(filters={STATUS: ["collected", "registered", "disposed", "verified"]})
        rows = self._all(query)
        rows.sort(key=lambda p: (p.get("deadline_at") or "9999", p.get("reported_at") or "", p["_fid"]))
        return rows[:limit]


def _prefixed(largest: dict[int, int]) -> dict[str, int]:
    return {f"{CODE_PREFIX}{year}-": serial for year, serial in largest.items()}
