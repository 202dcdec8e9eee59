"""The web application: the app factory, which alone wires Flask to the core and the store."""

from __future__ import annotations

from flask import Flask
from flask_compress import Compress
from werkzeug.middleware.proxy_fix import ProxyFix

from geoapp import config
from geoapp.core import stats
from geoapp.core.layers import Registry
from geoapp.core.service import Service
from geoapp.errors import ConfigError
from geoapp.web import errors, i18n, maps, security

GEOJSON = "application/geo+json"


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: settings, the layer registry (validated now), blueprints, CLI."""
    app = Flask(__name__, instance_relative_config=True, template_folder=str(config.PROJECT_ROOT / "templates"))
    config.load(app, test_config)
    app.config.setdefault(
        "COMPRESS_MIMETYPES", ["application/json", GEOJSON, "text/html", "text/css", "text/javascript"]
    )
    app.json.ensure_ascii = False
    app.config.setdefault("MAX_CONTENT_LENGTH", 4 * 1024 * 1024)  # an edit is a feature, not a data set
    proxies = int(app.config["GEOAPP_PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    registry = Registry.load(app.config["GEOAPP_LAYERS"])
    figures = stats.load_figures(app.config["GEOAPP_LAYERS"], registry)
    app.extensions["geoapp"] = Service(
        registry, app.config["GEOAPP_DATABASE"], app.config["GEOAPP_METRIC_CRS"], figures=figures
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

    from geoapp.web import api, auth, cli, pages, tiles

    auth.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    tiles.init_app(app)
    cli.init_app(app)
    return app


def service(app: Flask | None = None) -> Service:
    """The running app's :class:`Service`."""
    from flask import current_app

    return (app or current_app).extensions["geoapp"]
