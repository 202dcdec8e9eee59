"""Downloads of a layer in the exchange formats: ``GET /api/layers/<id>/export.<fmt>?<filters>&crs=<code>``.

A thin adapter: the features API's filters are read by ``geoapp.core.query.features_request`` (every match is
exported, so ``limit``, ``offset`` and ``after`` are refused), the output CRS by ``geoapp.core.crs.parse_crs``,
and the file written by ``geoapp.io.exporter``. The public gets the public fields, staff their role's view (the
same policy as the features API). The ETag says what the file depends on (layer definitions, layer version,
who may see what, the query, the language): an If-None-Match that holds it answers 304 before any work.
"""

from __future__ import annotations

import zlib

from flask import Blueprint, Response, request
from flask_babel import gettext as _

from geoapp.core.crs import parse_crs
from geoapp.core.query import features_request
from geoapp.errors import InvalidParameter
from geoapp.io import exporter
from geoapp.web import service
from geoapp.web.access import visibility
from geoapp.web.i18n import current_lang

bp = Blueprint("exports", __name__)

#: parameters the export takes besides the features API's filters
OWN = ("crs", "lang")
#: the features API's paging: an export holds every match
PAGING = ("limit", "offset", "after")


def _not_modified(tag: str) -> Response | None:
    held = request.if_none_match
    if held and (held.star_tag or any(t == tag or t.startswith(f"{tag}:") for t in held.as_set(include_weak=True))):
        response = Response(status=304)
        response.set_etag(tag)
        return response
    return None


@bp.app_context_processor
def _choices() -> dict:
    """``export_choices()`` for the download controls of the pages: the formats, and the coordinate systems
    with an EPSG code (WGS84, CGCS2000, the district's metric CRS; the templates add GCJ-02 and BD-09)."""

    def export_choices() -> dict:
        metric = parse_crs(service().store.metric_crs)
        return {
            "formats": [(name, form.title) for name, form in exporter.FORMATS.items()],
            "crs": [
                ("EPSG:4326", _("WGS84 longitude/latitude (EPSG:4326, GPS)")),
                ("EPSG:4490", _("CGCS2000 longitude/latitude (EPSG:4490)")),
                (metric.code, _("%(name)s, metres (%(code)s)", name=metric.name, code=metric.code)),
            ],
        }

    return {"export_choices": export_choices}


@bp.get("/api/layers/<layer_id>/export.<fmt>")
def export(layer_id: str, fmt: str):
    """Every feature of a layer that the features API's filters match, as a file in ``fmt``."""
    svc = service()
    layer = svc.registry.require(layer_id)
    exporter.check_format(fmt)
    args = request.args.to_dict(flat=False)
    for name in PAGING:
        if name in args:
            raise InvalidParameter(
                f"{name}: an export holds every matching feature; page with the features API instead",
                parameter=name,
            )
    given = {name: args.pop(name) for name in OWN if name in args}
    if len(given.get("crs", ())) > 1:
        raise InvalidParameter("crs given more than once; give it once", parameter="crs")
    crs = exporter.output_crs(given["crs"][0] if "crs" in given else None, fmt)
    vis = visibility()
    lang = current_lang()
    req = features_request(svc.reader, layer, args, visibility=vis)
    versions = svc.reader.versions()
    depends = "-".join(str(versions[d]) for d in req.depends)
    query = f"{zlib.crc32(request.query_string):08x}"
    tag = "-".join(["export", layer_id, fmt, str(versions[layer_id]), depends, vis, lang, query])
    tag += f"-{svc.registry.fingerprint}"
    if (cached := _not_modified(tag)) is not None:
        return cached
    made = exporter.export(
        svc.reader,
        svc.registry,
        layer_id,
        req.query,
        fmt=fmt,
        crs=crs,
        visibility=vis,
        lang=lang,
        timezone=svc.timezone,
        clock=svc.clock,
        synthetic=svc.store.synthetic,
    )
    response = Response(made.content, mimetype=made.media_type)
    response.headers["Content-Disposition"] = made.disposition()
    response.headers["X-Feature-Count"] = str(made.count)
    response.vary.add("Accept-Language")
    if made.version == versions[layer_id]:  # the file is of the version the tag names
        response.set_etag(tag)
    return response
