"""The flood commander's board (``/flood``): the map of monitored features by level beside the situation list.

The page carries no readings: its script (``static/js/pages/flood.js``) polls ``/api/flood/live`` and redraws in
place. What the signed-in user may do there (close, seal, reopen, report a depth) is decided here from their roles
and handed to the script in its config; the API checks it again on every request.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from geoapp import config
from geoapp.core import permissions
from geoapp.errors import Forbidden, Unauthorized
from geoapp.flood.service import BOARD_ROLES, CLOSURE_ROLES, READING_ROLES
from geoapp.web import auth, maps, service
from geoapp.web.access import staff
from geoapp.web.i18n import current_lang
from geoapp.web.pages import _basemap, _context, ui_text
from geoapp.web.security import nonce

bp = Blueprint("flood_pages", __name__)


def flood_text() -> dict[str, str]:
    """Every string the board's script shows, in the page's language."""
    return {
        "board": _("Flood board"),
        "dataUpdated": _("Data as of"),
        "boardRefreshed": _("Board refreshed"),
        "noReadings": _("no readings yet"),
        "pollFailed": _("Refresh failed at {time}: the data shown may be out of date"),
        "signal": _("Rainstorm signal"),
        "rainAt": _("Rain at {gauge}"),
        "hoursShort": _("{hours} h"),
        "situation": _("Situation"),
        "depth": _("Depth"),
        "trend": _("Last hour"),
        "level": _("Level"),
        "closure": _("Closure"),
        "nearestPump": _("Nearest pump"),
        "recommend_close": _("Recommend closing"),
        "recommend_seal": _("Recommend sealing"),
        "closed_close": _("Closed"),
        "closed_seal": _("Sealed"),
        "noDataSince": _("No data since {time}"),
        "neverData": _("No readings received"),
        "observedAt": _("Observed"),
        "thresholds": _("Thresholds (attention / warning / danger)"),
        "action_close": _("Close"),
        "action_seal": _("Seal"),
        "reopen": _("Reopen"),
        "reason": _("Reason"),
        "reasonRequired": _("Give a reason"),
        "closedBy": _("{who}, {time}: {reason}"),
        "reportDepth": _("Report depth (cm)"),
        "send": _("Send"),
        "sending": _("Sending…"),
        "sent": _("Sent: the level follows on the next refresh"),
        "done": _("Done"),
        "failed": _("Failed: {message}"),
        "scenario": _("Rain scenario"),
        "rainRate": _("Rain (mm/h)"),
        "hours": _("Hours"),
        "run": _("Run"),
        "scenarioBanner": _("Scenario — not live data"),
        "scenarioTag": _("Scenario"),
        "scenarioRain": _("Scenario rain"),
        "scenarioWhat": _("{rate} mm/h for {hours} h"),
        "backToLive": _("Back to live"),
        "pondsAt": _("Ponds at"),
        "nearest": _("Nearest resources"),
        "nearestHint": _("Right-click the map, or click a feature, for the nearest resources"),
        "anyKind": _("Any kind"),
        "contact": _("Contact"),
        "noneAvailable": _("No available resource found"),
        "clear": _("Clear"),
        "fromHere": _("From this point"),
        "counts": _("Features by level"),
        "allClear": _("Nothing above normal"),
        "closures": _("Closures in force"),
        "noClosures": _("None"),
        "scenarioFailed": _("The scenario could not be computed: {message}"),
    }


def _board_text() -> dict[str, str]:
    return {**ui_text(), **flood_text()}


@bp.get("/flood")
@auth.require_role(*BOARD_ROLES)
def board():
    """The commander's board: the map of monitored features by level, the rain signal, the situation list."""
    svc = service()
    user = g.get("user")
    may_close = _has(user, CLOSURE_ROLES)
    may_report = _has(user, READING_ROLES)
    summary = svc.reader.summary()
    extent = summary["district_boundary"].extent if "district_boundary" in summary else None
    m = maps.flood_map(
        svc.registry,
        _context(),
        svc.flood_rules,
        lang=current_lang(),
        internal=staff(),
        basemap_=_basemap(),
        text=_board_text(),
        urls={"api": f"{request.script_root}/api", "features": f"{request.script_root}/features/"},
        extent=extent,
        may_close=may_close,
        may_report=may_report,
        csrf=generate_csrf() if (may_close or may_report) else None,
        # how often the board asks for the live data (a 304 when nothing changed)
        poll_ms=round(1000 * config.number(current_app.config, "GEOAPP_BOARD_REFRESH_S", minimum=1)),
        time_zone=svc.timezone.key,
    )
    return render_template(
        "flood.html",
        map=maps.render(m, nonce()),
        title=_("Flood board"),
        may_close=may_close,
    )


def _has(user, roles: tuple[str, ...]) -> bool:
    """Whether the user holds one of ``roles`` (admin holds every one), as the API will check."""
    try:
        permissions.require_role(user, roles)
    except (Forbidden, Unauthorized):
        return False
    return True
