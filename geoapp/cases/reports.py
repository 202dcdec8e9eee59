"""Public reports (公众上报), FixMyStreet's way: anyone pins a problem on the public map and follows it by reference.

Flask-free. A report is checked (a point in the district, a subclass the public may choose, a description of plain
text within the limit, an optional photo re-encoded without its metadata, nothing else kept), limited per address
and hour, and held: nothing of it reaches the public until a dispatcher accepts it (it becomes a case, collected,
routed to its grid cell's squad, with the public note the dispatcher words) or turns it down with a reason. The
reporter follows it by its reference: its state, and once it is a case, the case's status and the times of its
steps; never a staff name, an internal field or anyone else's report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable
from typing import Any

import shapely

from geoapp.cases.service import Cases
from geoapp.cases.workflow import LAYER, STATUS
from geoapp.core import permissions
from geoapp.core.layers import utc_text
from geoapp.core.messages import Words
from geoapp.core.photos import process
from geoapp.errors import InvalidFeature, InvalidParameter, NotFound, PayloadTooLarge
from geoapp.store.base import Actor

#: a reference: "R" and 10 characters of Crockford's base32 (no I, L, O, U), in two groups: R7K3M9-Q2PXT
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MODERATORS = ("dispatcher",)
MAX_CONTACT = 60
MAX_REASON = 300
STATES = ("pending", "accepted", "rejected")
#: the case times a reporter is shown as the case goes on
FOLLOWED = ("reported_at", "registered_at", "disposed_at", "closed_at")


def _refuse(parameter: str, en: str, zh: str) -> InvalidParameter:
    return InvalidParameter(en, parameter=parameter, text=Words(zh, en))


def new_reference() -> str:
    code = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"R{code[:5]}-{code[5:]}"


def normal_reference(text: Any) -> str | None:
    """A reference as typed (lower case, spaces, O for 0) in its stored form, or None if it cannot be one."""
    if not isinstance(text, str):
        return None
    raw = text.strip().upper().replace(" ", "").replace("O", "0").replace("I", "1").replace("L", "1")
    raw = raw.removeprefix("R").replace("-", "")
    if len(raw) != 10 or any(c not in _ALPHABET for c in raw):
        return None
    return f"R{raw[:5]}-{raw[5:]}"


def _text(value: Any, parameter: str, most: int, *, lines: bool) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _refuse(parameter, f"{parameter} must be text", "须为文字")
    value = unicodedata.normalize("NFC", value).strip()
    if len(value) > most:
        raise _refuse(
            parameter,
            f"{parameter} must be at most {most} characters, not {len(value)}",
            f"最多 {most} 个字，现有 {len(value)} 个",
        )
    allowed = "\n\t" if lines else ""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in allowed for c in value):
        raise _refuse(parameter, f"{parameter} must be plain text", "只能是普通文字，不能含控制字符")
    return value


class Reports:
    """Take, moderate and follow the public's reports."""

    def __init__(self, cases: Cases, *, secret: bytes, clock: Callable[[], float]):
        self.cases = cases
        self.store = cases.store
        self.rules = cases.workflow.public_reports
        self.secret = secret
        self.clock = clock

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- the public ---------------------------------------------------------------------------

    def submit(
        self,
        address: str,
        *,
        lon: Any,
        lat: Any,
        subcategory: Any,
        description: Any,
        contact: Any = None,
        photo: bytes | None = None,
    ) -> dict[str, Any]:
        """Hold a report from ``address`` (the client's IP); return its reference and state."""
        try:
            lon, lat = float(lon), float(lat)
        except (TypeError, ValueError):
            raise _refuse("lon", "lon and lat must be numbers (the pin's place)", "请在地图上点选问题位置") from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise _refuse("lon", "lon and lat must be a place on Earth", "位置无效")
        try:
            self.cases.editing._check_inside_district(self.cases.layer, shapely.Point(lon, lat))
        except InvalidFeature:  # the district rule, said to the reporter of the pin
            raise _refuse(
                "lon", "the pin lies outside the district", "位置不在本区范围内，请在本区地图上点选"
            ) from None
        if subcategory not in self.rules.subcategories:
            raise _refuse(
                "subcategory",
                f"subcategory must be one of {', '.join(self.rules.subcategories)}",
                "请选择问题类别",
            )
        description = _text(description, "description", self.rules.max_text, lines=True)
        if len(description) < 4:
            raise _refuse("description", "describe the problem in a few words", "请用几句话描述问题")
        contact = _text(contact, "contact", MAX_CONTACT, lines=False) or None
        values: dict[str, Any] = {
            "reference": new_reference(),
            "created_at": utc_text(self._now()),
            "address": hmac.new(self.secret, address.encode(), hashlib.sha256).hexdigest(),
            "lon": lon,
            "lat": lat,
            "subcategory": subcategory,
            "description": description,
            "contact": contact,
        }
        if photo:
            if len(photo) > self.rules.max_photo_mb * 1024 * 1024:
                raise PayloadTooLarge(
                    f"a photo may have at most {self.rules.max_photo_mb:g} MB",
                    parameter="photo",
                    text=Words(
                        f"照片最大 {self.rules.max_photo_mb:g} MB",
                        f"a photo may have at most {self.rules.max_photo_mb:g} MB",
                    ),
                )
            processed = process(photo, max_pixels=self.rules.max_pixels)
            values.update(media_type=processed.media_type, image=processed.image)
        since = utc_text(self._now() - dt.timedelta(hours=1))
        added = self.store.add_report(values, per_hour=self.rules.per_hour, since=since)
        return {"reference": added["reference"], "state": added["state"]}

    def follow(self, reference: Any) -> dict[str, Any]:
        """What the reporter (whoever has the reference) may know of a report: its state, the reason it was turned
        down, and once it is a case its status and the times of its steps."""
        ref = normal_reference(reference)
        found = self.store.report(ref) if ref else None
        if found is None:
            raise NotFound(
                "no report with this reference",
                parameter="reference",
                text=Words("未找到该编号的上报", "no report with this reference"),
            )
        out: dict[str, Any] = {  # not the reference: who asks has it
            "state": found["state"],
            "submitted_at": found["created_at"],
            "subcategory": found["subcategory"],
            "reason": found["reason"] if found["state"] == "rejected" else None,
            "status": None,
            "steps": {},
            "public_note": None,
        }
        if found["state"] == "accepted" and found["case_fid"] is not None:
            case = self.cases.reader.get(LAYER, int(found["case_fid"]), "public")
            if case is not None:
                out["status"] = case.properties.get(STATUS)
                out["steps"] = {name: case.properties.get(name) for name in FOLLOWED}
                out["public_note"] = case.properties.get("public_note")
        return out

    # -- moderation ---------------------------------------------------------------------------

    def queue(self, actor: Actor, state: str = "pending") -> list[dict[str, Any]]:
        permissions.require_role(actor, MODERATORS)
        if state not in STATES:
            raise InvalidParameter(f"state must be one of {', '.join(STATES)}", parameter="state")
        return [{k: v for k, v in r.items() if k != "address"} for r in self.store.reports(state)]

    def photo(self, actor: Actor, reference: str) -> tuple[str, bytes]:
        permissions.require_role(actor, MODERATORS)
        found = self.store.report_image(normal_reference(reference) or "")
        if found is None:
            raise NotFound("this report has no photo", parameter="reference")
        return found

    def accept(
        self, actor: Actor, reference: Any, *, public_note: Any = None, subcategory: Any = None
    ) -> dict[str, Any]:
        """Make a pending report a case (collected, routed), showing the public only ``public_note``."""
        permissions.require_role(actor, MODERATORS)
        ref = normal_reference(reference)
        found = self.store.report(ref) if ref else None
        if found is None:
            raise NotFound("no report with this reference", parameter="reference")
        note = _text(public_note, "public_note", 500, lines=True) or None
        kind = subcategory or found["subcategory"]
        if kind not in self.cases.workflow.classes:
            raise InvalidParameter(
                f"subcategory must be one of {', '.join(self.cases.workflow.classes)}", parameter="subcategory"
            )
        props = {
            "subcategory": kind,
            "source": "public",
            "details": found["description"],
            "reported_at": found["created_at"],
            "public_note": note,
            "report_reference": found["reference"],
        }
        prepared = self.cases.prepare([(props, shapely.Point(found["lon"], found["lat"]))])
        (report, case) = self.cases.numbered(
            prepared,
            lambda p: self.store.accept_report(ref, p[0][0], p[0][1], public_text=note, actor=actor),
        )
        return {"report": {k: v for k, v in report.items() if k != "address"}, "case": case}

    def reject(self, actor: Actor, reference: Any, reason: Any) -> dict[str, Any]:
        """Turn a pending report down; the reporter reads ``reason``."""
        permissions.require_role(actor, MODERATORS)
        ref = normal_reference(reference)
        reason = _text(reason, "reason", MAX_REASON, lines=False)
        if not reason:
            raise _refuse(
                "reason",
                "say why the report is turned down (the reporter reads it)",
                "请说明不受理的原因（上报人可见）",
            )
        if ref is None:
            raise NotFound("no report with this reference", parameter="reference")
        report = self.store.reject_report(ref, reason, actor=actor)
        return {k: v for k, v in report.items() if k != "address"}

    def public_map(self) -> list[dict[str, Any]]:
        """The accepted reports the public map shows: where, what, its status and the moderator's note."""
        shown = []
        for report in self.store.reports("accepted", limit=5000):
            case = self.cases.reader.get(LAYER, int(report["case_fid"]), "public") if report["case_fid"] else None
            if case is None:
                continue
            shown.append(
                {
                    "lon": round(case.geometry.x, 5),
                    "lat": round(case.geometry.y, 5),
                    "subcategory": case.properties.get("subcategory"),
                    "status": case.properties.get(STATUS),
                    "reported_at": case.properties.get("reported_at"),
                    "public_note": case.properties.get("public_note"),
                }
            )
        return shown
