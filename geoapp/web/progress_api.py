"""The progress table's rows, figures and the ledger exports (台账), as JSON, XLSX and CSV.

A thin adapter: the parameters are read and the rows selected by ``geoapp.core.progress``, the
ledgers written by ``geoapp.core.ledger``. Public callers see the public fields, staff every field;
the JSON answers carry an ETag (the layer definitions' fingerprint, the layer's version, who may see what,
today's date in the district, for what is overdue changes with it, and the query) and answer 304 to an
If-None-Match that holds it.
"""

from __future__ import annotations

import datetime as dt
import zlib

import orjson
from flask import Blueprint, Response, request

from geoapp.core import ledger, progress
from geoapp.errors import InvalidParameter, NotFound
from geoapp.web import service
from geoapp.web.access import visibility
from geoapp.web.i18n import current_lang

bp = Blueprint("progress_api", __name__, url_prefix="/api")


def _json(payload) -> Response:
    return Response(orjson.dumps(payload), mimetype="application/json")


def _query_tag() -> str:
    return f"{zlib.crc32(request.query_string):08x}"


def _not_modified(tag: str) -> Response | None:
    """A 304 when the caller holds ``tag`` already (as sent, or as compression suffixed it), before any work."""
    held = request.if_none_match
    if not held:
        return None
    matches = [t for t in held.as_set(include_weak=True) if t == tag or t.startswith(f"{tag}:")]
    if held.star_tag or matches:
        response = Response(status=304)
        response.set_etag(matches[0] if matches else tag)  # the tag a 200 would carry, compression's suffix kept
        return response
    return None


def _tagged(payload, tag: str) -> Response:
    response = _json(payload)
    response.set_etag(tag)
    return response.make_conditional(request)


@bp.get("/progress")
def overview():
    """Each campaign layer's total, done and overdue, in registry order."""
    for name in request.args:
        if name not in progress.PASSED:
            raise InvalidParameter(f"unknown parameter {name[:40]!r}; /api/progress takes none", parameter=name)
    current_lang()  # the answer holds no text in a language, but a bad ?lang= is refused as everywhere
    svc = service()
    vis = visibility()
    versions = svc.reader.versions()
    on = progress.today(svc.clock, svc.timezone)
    layers = progress.campaign_layers(svc.registry)
    tag = "-".join(
        ["progress", svc.registry.fingerprint, *(str(versions[layer.id]) for layer in layers), vis, on.isoformat()]
    )
    if (cached := _not_modified(tag)) is not None:
        return cached
    return _tagged(progress.overview(svc.reader, svc.registry, vis, on, progress.as_of(svc.clock)), tag)


@bp.get("/progress/<layer_id>/rows")
def rows(layer_id: str):
    """A page of a campaign layer's rows as the table asks for them, with the figures of every matched row."""
    svc = service()
    layer = progress.campaign_layer(svc.registry, layer_id)
    vis = visibility()
    selection = progress.parse_selection(layer, request.args.to_dict(flat=False), visibility=vis)
    current_lang()  # a bad ?lang= is refused as everywhere
    on = progress.today(svc.clock, svc.timezone)
    version = svc.reader.versions()[layer_id]
    tag = f"rows-{layer_id}-{svc.registry.fingerprint}-{version}-{vis}-{on.isoformat()}-{_query_tag()}"
    if (cached := _not_modified(tag)) is not None:
        return cached
    matched = progress.select(svc.reader, layer, selection, vis, on)
    return _tagged(progress.rows_answer(matched, selection, vis, progress.as_of(svc.clock)), tag)


def _ledger(layer, selection, fmt: str, *, campaign: bool) -> Response:
    svc = service()
    lang = current_lang()
    now = dt.datetime.fromtimestamp(svc.clock(), svc.timezone)
    made = ledger.export(
        svc.reader,
        layer,
        selection,
        visibility(),
        lang,
        fmt,
        now=now,
        synthetic=svc.store.synthetic,
        campaign=campaign,
    )
    response = Response(made.content, mimetype=made.mimetype)
    response.headers["Content-Disposition"] = made.disposition()
    response.vary.add("Accept-Language")
    return response


def _format(fmt: str) -> str:
    if fmt not in ledger.FORMATS:
        raise NotFound(f"a ledger is ledger.xlsx or ledger.csv, not ledger.{fmt[:20]}", parameter="format")
    return fmt


@bp.get("/progress/<layer_id>/ledger.<fmt>")
def progress_ledger(layer_id: str, fmt: str):
    """Every row the progress table's filters match (no paging), in its order, as XLSX or CSV."""
    layer = progress.campaign_layer(service().registry, layer_id)
    _format(fmt)
    selection = progress.parse_selection(layer, request.args.to_dict(flat=False), visibility=visibility(), paged=False)
    return _ledger(layer, selection, fmt, campaign=True)


@bp.get("/layers/<layer_id>/ledger.<fmt>")
def layer_ledger(layer_id: str, fmt: str):
    """Any layer's features as a ledger: exact field filters (``field=value``), ``bbox``, ``sort``/``order``."""
    layer = service().registry.require(layer_id)
    _format(fmt)
    selection = progress.parse_layer_selection(layer, request.args.to_dict(flat=False), visibility=visibility())
    return _ledger(layer, selection, fmt, campaign=False)
