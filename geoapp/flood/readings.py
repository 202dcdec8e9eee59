"""Reading what a sensor or a commander posts: every check before anything is stored. Flask-free.

A body is one reading, or ``{"readings": [...]}`` of up to the rules' batch size. Each names a
layer the rules monitor (or the rain gauges), a feature of it, the kind that layer measures, a
value within the kind's limits, the time it was observed (ISO 8601 with a time zone, not in the
future beyond the rules' allowance) and its source. The first reading that does not fit refuses
the whole batch, naming it (``readings[3].value``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from geoapp.core.layers import Registry
from geoapp.errors import InvalidParameter
from geoapp.flood.rules import KINDS, Rules
from geoapp.store.base import Actor, Reading

MEMBERS = ("layer", "feature_id", "kind", "value", "observed_at", "source")
#: a sensor clock that was never set reports 1970 (or 2000): no reading is older than this
EARLIEST = dt.datetime(2000, 1, 2, tzinfo=dt.UTC)
_SOURCE = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


def parse_time(text: Any, parameter: str) -> dt.datetime:
    """An ISO 8601 time with a time zone (``2026-07-20T08:30:00+08:00`` or ``...Z``), as an aware datetime."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise InvalidParameter(
            f"{parameter} must be an ISO 8601 time with a time zone, like 2026-07-20T08:30:00+08:00", parameter
        )
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            f"{parameter} is not an ISO 8601 time ({text[:40]!r}); send it like 2026-07-20T08:30:00+08:00", parameter
        ) from None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise InvalidParameter(
            f"{parameter} has no time zone ({text[:40]!r}); add one, like +08:00 for the district's time or Z for UTC",
            parameter,
        )
    return stamp


def to_ms(stamp: dt.datetime) -> int:
    return round(stamp.timestamp() * 1000)


#: the times a range may name (the years 2000 to 9999, UTC): beyond them a time cannot be written back as a date
EARLIEST_MS = to_ms(EARLIEST)
LATEST_MS = to_ms(dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)) + 1


def parse_range_time(text: str, parameter: str) -> int:
    """A ``since`` or ``until`` of a series, in milliseconds; a time outside the years 2000 to 9999 is refused."""
    ms = to_ms(parse_time(text, parameter))
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise InvalidParameter(f"{parameter} must lie between the years 2000 and 9999 (UTC)", parameter)
    return ms


def iso(ms: int | None) -> str | None:
    """A stored time (milliseconds, UTC) as ISO 8601 in UTC, to the millisecond."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def parse_readings(
    body: Mapping[str, Any],
    *,
    rules: Rules,
    registry: Registry,
    exists: Callable[[str, int], bool],
    actor: Actor,
    now_ms: int,
) -> list[Reading]:
    """The readings of a body, each checked; raise :class:`InvalidParameter` naming the first that does not fit."""
    limit = rules.readings.batch
    if "readings" in body:
        extra = sorted(set(body) - {"readings"})
        if extra:
            raise InvalidParameter(
                f'a batch is {{"readings": [...]}} alone; unknown member {extra[0]!r}', parameter=extra[0]
            )
        items = body["readings"]
        if not isinstance(items, list) or not items:
            raise InvalidParameter(f"readings must be a list of 1 to {limit} readings", parameter="readings")
        if len(items) > limit:
            raise InvalidParameter(
                f"a batch holds at most {limit} readings, not {len(items)}; send it in parts", parameter="readings"
            )
        named = [(f"readings[{i}].", item) for i, item in enumerate(items)]
    else:
        named = [("", body)]
    return [_reading(item, where, rules, registry, exists, actor, now_ms) for where, item in named]


def labels(body: Mapping[str, Any]) -> list[str]:
    """How each reading of a body is named in an error: "readings[3]." in a batch, nothing for one reading."""
    if "readings" in body and isinstance(body["readings"], list):
        return [f"readings[{i}]." for i in range(len(body["readings"]))]
    return [""]


def _reading(item, where, rules, registry, exists, actor, now_ms) -> Reading:
    if not isinstance(item, Mapping):
        raise InvalidParameter(f"{where or 'the body '}must be a reading object", parameter=where.rstrip(".") or "body")
    for name in item:
        if name not in MEMBERS:
            raise InvalidParameter(f"unknown member {name!r}; allowed: {', '.join(MEMBERS)}", parameter=where + name)
    for name in ("layer", "feature_id", "kind", "value", "observed_at"):
        if item.get(name) is None:
            raise InvalidParameter(
                f"{where}{name} is required (a reading has layer, feature_id, kind, value and observed_at)",
                parameter=where + name,
            )
    layer = item["layer"]
    kinds = {layer_id: rules.kind_of(layer_id) for layer_id in registry.ids}
    takes = sorted(layer_id for layer_id, kind in kinds.items() if kind)
    if not isinstance(layer, str) or layer not in registry:
        raise InvalidParameter(
            f"{where}layer {str(layer)[:40]!r} is unknown; readings are taken of: {', '.join(takes)}", where + "layer"
        )
    kind = kinds[layer]
    if kind is None:
        raise InvalidParameter(
            f"{where}layer {layer} is not monitored; readings are taken of: {', '.join(takes)}", where + "layer"
        )
    if item["kind"] not in KINDS:
        raise InvalidParameter(f"{where}kind must be one of: {', '.join(KINDS)}", where + "kind")
    if item["kind"] != kind:
        raise InvalidParameter(f"{where}kind: {layer} takes {kind} readings, not {item['kind']}", where + "kind")
    fid = item["feature_id"]
    if isinstance(fid, bool) or not isinstance(fid, int) or not 0 < fid < 2**63 or not exists(layer, fid):
        raise InvalidParameter(
            f"{where}feature_id: there is no feature {str(fid)[:40]} in {layer}", where + "feature_id"
        )
    value = item["value"]
    limit = rules.readings.limit(kind)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameter(f"{where}value must be a number of {limit.unit}", where + "value")
    if not limit.min <= value <= limit.max:
        raise InvalidParameter(
            f"{where}value {value:g} {limit.unit} is outside {limit.min:g} to {limit.max:g} {limit.unit} "
            f"(a {kind} reading)",
            where + "value",
        )
    stamp = parse_time(item["observed_at"], where + "observed_at")
    ms = to_ms(stamp)
    ahead = rules.readings.future_minutes
    if ms > now_ms + ahead * 60_000:
        raise InvalidParameter(
            f"{where}observed_at {item['observed_at']} is more than {ahead:g} minutes in the future; check the "
            "sensor's clock",
            where + "observed_at",
        )
    if stamp < EARLIEST:
        raise InvalidParameter(
            f"{where}observed_at {item['observed_at']} is before 2000: the sensor's clock was not set",
            where + "observed_at",
        )
    # + 0.0: a reading of -0.0 is stored and shown as 0
    return Reading(layer, fid, kind, float(value) + 0.0, ms, _source(item.get("source"), where, actor))


def _source(source: Any, where: str, actor: Actor) -> str:
    """Who took the reading: a signed-in user is always the source of their own reports; a token names its
    device (its own name when the reading does not say)."""
    if actor.kind == "user":
        if source is not None and source != actor.name:
            raise InvalidParameter(
                f"{where}source: a signed-in user reports as themselves ({actor.name}), not {str(source)[:40]!r}",
                where + "source",
            )
        return actor.name
    if source is None:
        return actor.name
    if not isinstance(source, str) or not _SOURCE.fullmatch(source) or not source.strip():
        raise InvalidParameter(
            f"{where}source must be 1 to 100 characters naming the device, without control characters",
            where + "source",
        )
    return source
