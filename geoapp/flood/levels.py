"""Warning levels, rainstorm signals and rain scenarios: pure functions of the rules and the numbers. Flask-free."""

from __future__ import annotations

from collections.abc import Mapping

from geoapp.flood.rules import LEVELS, Closure, Rules

STALE = "stale"


def level_of(depth_cm: float, thresholds: Mapping[str, float]) -> str:
    """The level a depth reaches: the highest whose threshold it is at or above (``normal`` below them all)."""
    reached = "normal"
    for level in LEVELS[1:]:
        if depth_cm >= thresholds[level]:
            reached = level
    return reached


def severity(level: str) -> int:
    """How much a level asks for attention, for sorting: stale sits between attention and warning (nobody knows)."""
    return {"normal": 0, "attention": 1, STALE: 2, "warning": 3, "danger": 4}[level]


def recommends(level: str, closure: Closure | None) -> str | None:
    """The closure a level recommends (close an underpass, seal entrances), if the layer has one and it is reached."""
    if closure is None or level == STALE or LEVELS.index(level) < LEVELS.index(closure.recommend_at):
        return None
    return closure.action


def signal_of(totals: Mapping[int, float], rules: Rules) -> str | None:
    """The most severe rainstorm signal the rain totals (hours -> mm) amount to, or None."""
    for signal in rules.signals:  # most severe first
        if totals.get(signal.hours, 0.0) >= signal.mm:
            return signal.id
    return None


def scenario_totals(rain_mm_h: float, hours: float, rules: Rules) -> dict[int, float]:
    """The rain of each gauge window if ``rain_mm_h`` falls steadily for ``hours``: a window holds what falls in it."""
    return {w: rain_mm_h * min(hours, w) for w in rules.gauges.windows_h}


def scenario_level(rain_mm_h: float, ponding_mm_h: float, rules: Rules) -> str:
    """A feature's expected level when rain falls at ``rain_mm_h`` against the rate at which it ponds."""
    ratio = rain_mm_h / ponding_mm_h
    reached = "normal"
    for level in LEVELS[1:]:
        if ratio >= getattr(rules.scenario, level):
            reached = level
    return reached
