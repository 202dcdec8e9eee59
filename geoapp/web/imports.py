"""The administrators' import page ``/admin/import``: upload a file, read the check's report, confirm.

Upload -> the file is kept under the instance folder with a random id, bound to the user who sent it,
and checked (a dry run, :func:`geoapp.io.importer.check`); the report page lists every bad row and,
when there is none, offers a confirm button that imports *that* file (by its id; no path ever comes
from the client). The file is deleted after the import, or after an hour. Every decision is the
core's (``geoapp.io.importer``, ``Editing.import_features``); this module translates requests.

The upload may be larger than every other body (``GEOAPP_MAX_BODY_MB``): this form alone takes
``GEOAPP_IMPORT_MAX_MB``, and only from an administrator (known from the session before the body is
read), as :mod:`geoapp.web.photos` does for photos. ``GEOAPP_IMPORT_MAX_ROWS`` caps the rows.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from geoapp import config
from geoapp.core import permissions
from geoapp.core.messages import Words
from geoapp.errors import GeoappError, InvalidParameter, NotFound, PayloadTooLarge
from geoapp.io import formats, importer
from geoapp.web import auth, service
from geoapp.web.access import allow_upload, caller
from geoapp.web.i18n import current_lang

bp = Blueprint("imports", __name__, url_prefix="/admin/import")

#: how long an uploaded file waits for its confirmation
KEEP_S = 3600
_FIELDS = ("csrf_token", "layer", "mode", "key", "crs", "encoding", "source_layer", "columns")
_ID = 32  # hex characters of an upload's id


@bp.record_once
def _settings(state) -> None:
    """Read the import limits when the app is built: a bad value stops it with a message naming it."""
    app = state.app
    mb = config.number(app.config, "GEOAPP_IMPORT_MAX_MB", minimum=0.01)
    app.extensions["geoapp.import_max_mb"] = f"{mb:g}"
    app.extensions["geoapp.import_max_bytes"] = int(mb * 1024 * 1024)
    app.extensions["geoapp.import_max_rows"] = int(
        config.number(app.config, "GEOAPP_IMPORT_MAX_ROWS", minimum=1, integer=True)
    )


def max_bytes() -> int:
    return current_app.extensions["geoapp.import_max_bytes"]


def max_rows() -> int:
    return current_app.extensions["geoapp.import_max_rows"]


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, values: dict | None) -> None:
    """The larger body limit for an administrator's upload only (anyone else is refused at the app's limit)."""
    if endpoint != "imports.upload":
        return
    who = auth.principal()
    if who is None or "admin" not in who.roles:
        return
    allow_upload(max_bytes(), _too_large)


def _too_large() -> PayloadTooLarge:
    mb = current_app.extensions["geoapp.import_max_mb"]
    return PayloadTooLarge(
        f"an import file may be at most {mb} MB (GEOAPP_IMPORT_MAX_MB); nothing was written",
        parameter="file",
        text=Words(
            f"导入文件最大 {mb} MB，未写入任何数据", f"an import file may be at most {mb} MB; nothing was written"
        ),
    )


def _folder() -> Path:
    # IMPORT_FOLDER (not a GEOAPP_ setting): where tests keep uploads instead of the instance folder
    folder = Path(current_app.config.get("IMPORT_FOLDER") or Path(current_app.instance_path) / "imports")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _sweep(folder: Path) -> None:
    """Delete uploads older than :data:`KEEP_S`."""
    limit = time.time() - KEEP_S
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except FileNotFoundError:
            pass


def _layers() -> list[tuple[str, str]]:
    lang = current_lang()
    who = caller()
    return [(layer.id, layer.title(lang)) for layer in service().registry if permissions.may_edit(who, layer)]


def _form_page(form: dict | None = None, error: str | None = None, status: int = 200):
    return (
        render_template(
            "import.html",
            title=_("Import a file"),
            layers=_layers(),
            modes=importer.MODES,
            form=form or {"mode": "append"},
            error=error,
            max_mb=current_app.extensions["geoapp.import_max_mb"],
            max_rows=max_rows(),
            extensions=", ".join(sorted(formats.EXTENSIONS)),
        ),
        status,
    )


@bp.get("")
@auth.require_role("admin")
def page():
    """The upload form."""
    return _form_page()


def _options(form) -> importer.Options:
    def text(name: str) -> str | None:
        value = (form.get(name) or "").strip()
        return value or None

    columns = {}
    if text("columns"):
        pairs = [p for p in text("columns").replace("；", ";").replace("\n", ";").split(";") if p.strip()]
        columns = importer.parse_columns(pairs)
    layer = text("layer") or ""
    if layer not in service().registry:  # a form's choice, not a URL: 400 with the form, not 404
        raise InvalidParameter(
            f"layer: choose one of the layers ({layer[:40]!r} is none)",
            parameter="layer",
            text=Words("请选择导入到哪个图层", "choose the layer to import into"),
        )
    return importer.Options(
        layer=layer,
        mode=text("mode") or "append",
        key=text("key"),
        crs=text("crs"),
        encoding=text("encoding"),
        columns=columns,
        source_layer=text("source_layer"),
    )


def _meta_path(folder: Path, upload_id: str) -> Path:
    return folder / f"{upload_id}.json"


def _load(upload_id: str) -> tuple[Path, dict]:
    """An upload of this user by its id (never by a path from the client), or 404."""
    if len(upload_id) != _ID or any(c not in "0123456789abcdef" for c in upload_id):
        raise NotFound("no such upload", parameter="upload")
    folder = _folder()
    _sweep(folder)
    meta_path = _meta_path(folder, upload_id)
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        raise NotFound(
            "no such upload (uploads are kept for an hour): upload the file again",
            parameter="upload",
            text=Words(
                "没有这个上传文件（上传的文件保留一小时）：请重新上传",
                "no such upload (kept for an hour): upload it again",
            ),
        ) from None
    if meta.get("user") != g.user.name:
        raise NotFound("no such upload", parameter="upload")
    return folder / f"{upload_id}.data", meta


def _remove(upload_id: str) -> None:
    folder = _folder()
    for path in (folder / f"{upload_id}.data", _meta_path(folder, upload_id), folder / f"{upload_id}.running"):
        path.unlink(missing_ok=True)


class UploadClaimed(GeoappError):
    """The upload is being imported (or was) by another request: a double click, a retry."""

    status = 409
    code = "upload_claimed"


def _claim(upload_id: str) -> None:
    """Take the upload for one import: the meta file is renamed (atomic), so a second confirm finds nothing."""
    folder = _folder()
    try:
        os.rename(_meta_path(folder, upload_id), folder / f"{upload_id}.running")
    except FileNotFoundError:
        raise UploadClaimed(
            "this upload is already being imported (or was): look at the layer before uploading it again",
            parameter="upload",
            text=Words(
                "这个上传文件正在导入（或已导入）：请先查看图层，再决定是否重新上传",
                "this upload is already being imported (or was): look at the layer before uploading it again",
            ),
        ) from None


@bp.post("")
@auth.require_role("admin")
def upload():
    """Keep the uploaded file and check it (a dry run); show the report."""
    form = {name: request.form.get(name, "") for name in _FIELDS if name != "csrf_token"}
    try:
        for name in request.form:
            if name not in _FIELDS:
                raise InvalidParameter(f"unknown field {name[:40]!r}", parameter=name)
        sent = request.files.getlist("file")
        if len(sent) != 1 or not sent[0].filename:
            raise InvalidParameter(
                "choose one file to import",
                parameter="file",
                text=Words("请选择要导入的文件", "choose one file to import"),
            )
        upload_file = sent[0]
        name = Path(upload_file.filename.replace("\\", "/")).name[:200] or "upload"
        options = _options(request.form)
        folder = _folder()
        _sweep(folder)
        upload_id = secrets.token_hex(_ID // 2)
        data_path = folder / f"{upload_id}.data"
        try:
            return _keep_and_check(upload_file, upload_id, data_path, name, options)
        except BaseException:  # whatever failed, nothing of the upload stays behind
            _remove(upload_id)
            raise
    except RequestEntityTooLarge:
        return _form_page(form, _too_large().message_in(current_lang()), 413)
    except PayloadTooLarge as exc:
        return _form_page(form, exc.message_in(current_lang()), 413)
    except GeoappError as exc:
        if exc.status >= 500:
            raise
        return _form_page(form, exc.message_in(current_lang()), exc.status)


def _keep_and_check(upload_file, upload_id: str, data_path: Path, name: str, options: importer.Options):
    folder = data_path.parent
    written = 0
    fd = os.open(data_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while block := upload_file.stream.read(1024 * 1024):
            written += len(block)
            if written > max_bytes():
                raise _too_large()
            out.write(block)
    meta = {
        "user": g.user.name,
        "name": name,
        "at": time.time(),
        "options": {
            "layer": options.layer,
            "mode": options.mode,
            "key": options.key,
            "crs": options.crs,
            "encoding": options.encoding,
            "columns": dict(options.columns),
            "source_layer": options.source_layer,
        },
    }
    _meta_path(folder, upload_id).write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    return _check(upload_id, data_path, meta)


def _check(upload_id: str, data_path: Path, meta: dict):
    options = importer.Options(**meta["options"])
    try:
        permissions.require_edit(caller(), service().registry.require(options.layer))
        plan = importer.check(data_path, service().editing, options, name=meta["name"], max_rows=max_rows())
    except GeoappError as exc:
        _remove(upload_id)
        if exc.status >= 500:
            raise
        form = {**{k: v or "" for k, v in meta["options"].items() if k != "columns"}}
        form["columns"] = "; ".join(f"{k}={v}" for k, v in meta["options"]["columns"].items())
        return _form_page(form, exc.message_in(current_lang()), exc.status)
    plan.report.dry_run = True
    if not plan.report.ok:
        _remove(upload_id)
    return _report_page(plan.report, upload_id if plan.report.ok else None, status=200 if plan.report.ok else 400)


def _report_page(report: importer.Report, upload_id: str | None, status: int = 200):
    lang = current_lang()
    layer = service().registry.require(report.layer)
    return (
        render_template(
            "import_report.html",
            title=_("Import report"),
            report=report,
            layer_title=layer.title(lang),
            problems=[p.to_dict(lang) for p in report.problems],
            warnings=[w(lang) for w in report.warnings],
            format_name=formats.FORMATS.get(report.format, (report.format, report.format))[0 if lang == "zh" else 1],
            upload_id=upload_id,
        ),
        status,
    )


@bp.post("/<upload_id>/confirm")
@auth.require_role("admin")
def confirm(upload_id: str):
    """Import the file that was checked (checked again: the layer may have changed since)."""
    try:
        data_path, meta = _load(upload_id)
        _claim(upload_id)  # before anything is written: a second confirm of the same upload is refused
    except GeoappError as exc:
        return _form_page(None, exc.message_in(current_lang()), exc.status)
    options = importer.Options(**meta["options"])
    try:
        report = importer.run(data_path, service().editing, caller(), options, name=meta["name"], max_rows=max_rows())
    except GeoappError as exc:
        if exc.status >= 500:
            raise
        return _form_page(None, exc.message_in(current_lang()), exc.status)
    finally:
        _remove(upload_id)
    return _report_page(report, None, status=200 if report.ok else 400)


@bp.post("/<upload_id>/cancel")
@auth.require_role("admin")
def cancel(upload_id: str):
    """Forget an upload without importing it."""
    _load(upload_id)
    _remove(upload_id)
    return redirect(url_for("imports.page"), 303)
