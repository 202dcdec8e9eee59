"""Settings: defaults, then ``instance/config.py``, then ``GEOAPP_*`` environment variables, then a test dict."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from geoapp.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS = (
    Setting(
        "GEOAPP_DATABASE",
        "instance/geoapp.gpkg",
        "The store: a GeoPackage path (relative paths start at the project folder), or a PostgreSQL + PostGIS "
        "database as postgresql://user[:password]@host:port/database (several app servers on one database).",
    ),
    Setting(
        "GEOAPP_SQL_ABOVE",
        "2000000",
        "PostGIS only: layers with more features than this are queried in SQL on the GiST index; smaller layers "
        "are held in memory and follow the database's versions on every request.",
    ),
    Setting(
        "GEOAPP_POOL_SIZE",
        "8",
        "PostGIS only: database connections each worker process may hold (gunicorn workers x this, per server, "
        "must stay under the server's max_connections).",
    ),
    Setting("GEOAPP_LAYERS", "layers", "Folder of layer definitions, one YAML file per layer."),
    Setting(
        "GEOAPP_SECRET_KEY",
        "",
        "Key that signs session cookies; empty: a random key kept in instance/secret_key (mode 0600).",
    ),
    Setting(
        "GEOAPP_METRIC_CRS",
        "auto",
        "Projected CRS for metres when a store is created: auto (CGCS2000 Gauss-Kruger zone of the data, "
        "EPSG:4547 here; a UTM zone outside China) or an EPSG code.",
    ),
    Setting(
        "GEOAPP_BASEMAP",
        "osm",
        "Basemap tiles under the vector backdrop: none, osm, tianditu, amap (GCJ-02) or xyz:<URL template>.",
    ),
    Setting(
        "GEOAPP_PROXIES",
        "0",
        "How many reverse proxies (nginx ...) stand in front of the app; their X-Forwarded-For and "
        "X-Forwarded-Proto are then trusted for the client's address (sign-in limits, audit) and https.",
    ),
    Setting("GEOAPP_TIANDITU_KEY", "", "Tianditu key (tk); used by the server's tile proxy, never sent to a page."),
    Setting(
        "GEOAPP_TIANDITU_URL",
        "https://t{s}.tianditu.gov.cn/{layer}_w/wmts",
        "Tianditu WMTS endpoint the tile proxy asks ({s} is the server number 0-7, {layer} vec/cva/img/cia).",
    ),
    Setting(
        "GEOAPP_TILE_TIMEOUT",
        "5",
        "Seconds the tile proxy waits for a whole tile (connecting, headers and body together), then answers 502.",
    ),
    Setting(
        "GEOAPP_TILE_CONCURRENCY",
        "2",
        "Tiles each worker process fetches from the upstream at once; past that the proxy answers 503 at once.",
    ),
    Setting(
        "GEOAPP_TILE_CACHE",
        "instance/tiles",
        "Folder where the tile proxy keeps each tile it fetched (files 0600), so that the key is spent once per tile.",
    ),
    Setting("GEOAPP_TILE_CACHE_MB", "512", "Most the tile cache may hold, in MB (the oldest tiles go first); 0: none."),
    Setting(
        "GEOAPP_MAX_BODY_MB",
        "4",
        "Largest request body accepted, in MB; a larger one is refused with 413 before it is read.",
    ),
    Setting(
        "GEOAPP_PHOTO_MAX_MB",
        "10",
        "Largest photo a planner may attach to a feature, in MB (JPEG, PNG or WebP); only the upload takes a body "
        "this large.",
    ),
    Setting(
        "GEOAPP_IMPORT_MAX_MB",
        "50",
        "Largest file an administrator may upload on the import page (/admin/import), in MB; only that form takes "
        "a body this large. A zip may inflate to at most 1 GB.",
    ),
    Setting(
        "GEOAPP_IMPORT_MAX_ROWS",
        "100000",
        "Most rows (features) one import takes, on the page and on the command line; a larger file is refused "
        "before it is checked.",
    ),
    Setting(
        "GEOAPP_BASE_URL",
        "",
        "Public address of the app (https://onemap.example.gov.cn): absolute links are built on it, whatever "
        "Host a request names. Empty: on the request's host, which must be one of GEOAPP_TRUSTED_HOSTS.",
    ),
    Setting(
        "GEOAPP_TRUSTED_HOSTS",
        "",
        "Host names the app answers for, comma-separated (.example.gov.cn: every subdomain); any other Host "
        "is refused with 400. The host of GEOAPP_BASE_URL is always trusted; empty: localhost and 127.0.0.1 too.",
    ),
    Setting(
        "GEOAPP_CAP_SENDER",
        "geoapp@district.example",
        "Sender of the public CAP 1.2 warnings (/flood/warnings.atom): a DNS name or an address at one, which "
        "also names the feed's tag URIs; set it to the bureau's own once, and keep it.",
    ),
    Setting(
        "GEOAPP_TIMEZONE",
        "Asia/Shanghai",
        "The district's time zone (an IANA name): pages, ledgers and reports show times in it; the store keeps UTC.",
    ),
    Setting(
        "GEOAPP_BOARD_REFRESH_S",
        "5",
        "Seconds between the flood board's requests for live data (at least 1; an unchanged situation is a 304).",
    ),
)


def load(app, test_config: dict | None = None) -> None:
    """Fill ``app.config`` with every setting, in order of precedence, and resolve paths."""
    for setting in SETTINGS:
        app.config.setdefault(setting.name, setting.default)
    app.config.from_pyfile("config.py", silent=True)
    for setting in SETTINGS:
        if setting.name in os.environ:
            app.config[setting.name] = os.environ[setting.name]
    if test_config:
        app.config.update(test_config)
    for key in ("GEOAPP_DATABASE", "GEOAPP_LAYERS", "GEOAPP_TILE_CACHE"):
        if "://" not in app.config[key]:  # a database URL is not a path
            app.config[key] = str(resolve(app.config[key]))


def number(values, name: str, *, minimum: float = 0, integer: bool = False) -> float:
    """A numeric setting at least ``minimum``, or a :class:`ConfigError` naming it."""
    raw = values[name]
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} of at least {minimum:g}, not {raw!r}", parameter=name)
    return value


def resolve(path: str | os.PathLike) -> Path:
    """A path relative to the project folder, whatever the working directory."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path
