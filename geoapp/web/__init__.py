"""The web application: the app factory, which alone wires Flask to the core and the store."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from flask_compress import Compress
from werkzeug.middleware.proxy_fix import ProxyFix

from geoapp import config
from geoapp.cases.workflow import load_workflow
from geoapp.core import stats
from geoapp.core.layers import Registry
from geoapp.core.service import Service
from geoapp.errors import ConfigError
from geoapp.flood import rules as flood_rules
from geoapp.web import errors, i18n, maps, security

GEOJSON = "application/geo+json"
#: host names trusted when no other is configured: the machine itself, as ``make run`` serves it
LOOPBACK = ("localhost", "127.0.0.1")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: settings, the layer registry (validated now), blueprints, CLI."""
    # what the app creates (the store, its journal, the instance folder, cached tiles) is its owner's alone
    os.umask(0o077)
    app = Flask(__name__, instance_relative_config=True, template_folder=str(config.PROJECT_ROOT / "templates"))
    config.load(app, test_config)
    app.config.setdefault(
        "COMPRESS_MIMETYPES", ["application/json", GEOJSON, "text/html", "text/css", "text/javascript"]
    )
    app.json.ensure_ascii = False
    # Flask has these keys already (None), so setdefault would leave them unset
    app.config["MAX_CONTENT_LENGTH"] = int(config.number(app.config, "GEOAPP_MAX_BODY_MB") * 1024 * 1024)
    _hosts(app)
    proxies = int(app.config["GEOAPP_PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    registry = Registry.load(app.config["GEOAPP_LAYERS"])
    figures = stats.load_figures(app.config["GEOAPP_LAYERS"], registry)
    rules = flood_rules.load(app.config["GEOAPP_LAYERS"], registry)
    workflow = load_workflow(app.config["GEOAPP_LAYERS"], registry)
    try:
        timezone = ZoneInfo(str(app.config["GEOAPP_TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"GEOAPP_TIMEZONE must be an IANA time zone such as Asia/Shanghai, not {app.config['GEOAPP_TIMEZONE']!r}",
            parameter="GEOAPP_TIMEZONE",
        ) from None
    app.extensions["geoapp"] = Service(
        registry,
        app.config["GEOAPP_DATABASE"],
        app.config["GEOAPP_METRIC_CRS"],
        figures=figures,
        sql_above=int(config.number(app.config, "GEOAPP_SQL_ABOVE", integer=True)),
        pool_size=int(config.number(app.config, "GEOAPP_POOL_SIZE", minimum=1, integer=True)),
        flood_rules=rules,
        clock=app.config.get("CLOCK") or time.time,
        timezone=timezone,
        workflow=workflow,
    )
    try:
        basemap = maps.basemap(app.config["GEOAPP_BASEMAP"])
    except ValueError as exc:
        raise ConfigError(str(exc), parameter="GEOAPP_BASEMAP") from None
    if basemap.kind == "tianditu" and not app.config["GEOAPP_TIANDITU_KEY"]:
        raise ConfigError("GEOAPP_BASEMAP=tianditu needs GEOAPP_TIANDITU_KEY", parameter="GEOAPP_TIANDITU_KEY")
    app.extensions["geoapp.basemap"] = basemap
    maps.configure_assets()

    Compress(app)
    errors.init_app(app)
    i18n.init_app(app)
    security.init_app(app, basemap.origins)

    from geoapp.web import (
        api,
        auth,
        cases,
        cli,
        exports,
        feeds,
        flood_api,
        flood_pages,
        imports,
        ogc,
        pages,
        photos,
        progress,
        progress_api,
        public,
        reports,
        tiles,
    )

    auth.init_app(app)
    # the key of the hashes of reporters' addresses: the app's own secret, not stored beside them
    app.extensions["geoapp"].secret = hashlib.sha256(
        b"geoapp-reports:" + str(app.config["SECRET_KEY"]).encode()
    ).digest()
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(flood_api.bp)
    app.register_blueprint(flood_pages.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(progress.bp)
    app.register_blueprint(progress_api.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(photos.bp)
    app.register_blueprint(imports.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(ogc.bp)
    app.register_blueprint(cases.bp)
    tiles.init_app(app)
    cli.init_app(app)
    return app


def _hosts(app: Flask) -> None:
    """Build absolute links on GEOAPP_BASE_URL, and refuse a Host header the app does not answer for."""
    base = app.config["GEOAPP_BASE_URL"].strip()
    trusted = [h.strip() for h in app.config["GEOAPP_TRUSTED_HOSTS"].split(",") if h.strip()] or list(LOOPBACK)
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
            raise ConfigError(
                f"GEOAPP_BASE_URL must be like https://onemap.example.gov.cn, not {base!r}",
                parameter="GEOAPP_BASE_URL",
            )
        app.config["SERVER_NAME"] = parts.netloc
        app.config["PREFERRED_URL_SCHEME"] = parts.scheme
        trusted.append(parts.hostname)
    app.config["TRUSTED_HOSTS"] = trusted


def service(app: Flask | None = None) -> Service:
    """The running app's :class:`Service`."""
    from flask import current_app

    return (app or current_app).extensions["geoapp"]
