"""``flask --app wsgi geoapp ...``: create the store, list layers, print statistics."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from geoapp.cases import indicators
from geoapp.core import accounts
from geoapp.core import stats as report
from geoapp.errors import GeoappError, InvalidParameter
from geoapp.store import copy_store, store_exists, upgrade_store
from geoapp.store.base import Actor
from geoapp.web import service
from geoapp.web.auth import passwords

CLI = Actor("cli", "cli", roles=frozenset({"admin"}))  # the command line is the operator
ADMIN_HINT = "flask --app wsgi geoapp user add NAME --role admin"


class _Group(AppGroup):
    """Commands whose geoapp errors end as a one-line message and a non-zero exit, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GeoappError as exc:
            raise click.ClickException(exc.message) from None


geoapp_cli = _Group("geoapp", help="Manage the one-map store.")


def init_app(app: Flask) -> None:
    app.cli.add_command(geoapp_cli)


@geoapp_cli.command("init")
@click.option("--demo", is_flag=True, help="Fill the store with the synthetic demo district.")
@click.option(
    "--force", is_flag=True, help="Replace the layers of an existing store (accounts and audit trail are kept)."
)
@click.option("--drop-accounts", is_flag=True, help="With --force: also drop every account, token and audit row.")
@click.option("--if-missing", is_flag=True, help="Do nothing when the store already exists (for make run).")
def init_command(demo: bool, force: bool, drop_accounts: bool, if_missing: bool) -> None:
    """Create the store with every declared layer."""
    svc = service()
    if drop_accounts and not force:
        raise click.UsageError("--drop-accounts replaces a store: give --force too")
    if if_missing and store_exists(svc.registry, svc.database):
        click.echo(f"store exists: {svc.database}")
        _admin_hint()
        return
    data = None
    if demo:
        from data import demo_district

        data = demo_district.build()
    svc.create(data, force=force, demo=demo, keep_accounts=not drop_accounts, actor=CLI)
    total = sum(s.count for s in svc.reader.summary().values())
    what = "synthetic demo district" if demo else "empty layers"
    kept = " (accounts and audit trail kept)" if force and not drop_accounts else ""
    click.echo(f"created {svc.database}: {len(svc.registry)} layers, {total} features ({what}){kept}")
    _admin_hint()


def _admin_hint() -> None:
    if not any("admin" in u.roles and not u.disabled for u in service().store.users()):
        click.echo(f"no administrator yet; create the first one with: .venv/bin/{ADMIN_HINT}")


@geoapp_cli.group("db", cls=_Group)
def db_group() -> None:
    """The store's schema."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Bring the store's schema to this version of geoapp (PostGIS: Alembic's revisions, then the layer tables)."""
    svc = service()
    click.echo(upgrade_store(svc.registry, svc.database))


@geoapp_cli.command("copy")
@click.option("--from", "source", required=True, help="The store to copy: a .gpkg path or a postgresql:// URL.")
@click.option("--to", "target", required=True, help="The PostgreSQL database to fill: postgresql://user@host:port/db.")
@click.option("--force", is_flag=True, help="Replace a store the target database already holds.")
def copy_command(source: str, target: str, force: bool) -> None:
    """Move a district to PostGIS: every feature with its fid and version, accounts, tokens and the audit trail."""
    svc = service()
    source = source if "://" in source else str(Path(source).resolve())
    store = copy_store(svc.registry, source, target, force=force, actor=CLI)
    try:
        total = sum(store.sql_reader().count(layer_id) for layer_id in svc.registry.ids)
        click.echo(f"copied {total} features, {len(store.users())} accounts and {len(store.audit())} audit rows")
    finally:
        store.close()


@geoapp_cli.command("layers")
def layers_command() -> None:
    """List the layers with their feature counts."""
    svc = service()
    summary = svc.reader.summary()
    for layer in svc.registry:
        click.echo(f"{layer.id:<24} {summary[layer.id].count:>7}  {layer.title.zh} / {layer.title.en}")
        if summary[layer.id].problems:
            click.echo(f"{'':<24} {len(summary[layer.id].problems):>7}  rows the definition does not admit", err=True)


@geoapp_cli.command("stats")
def stats_command() -> None:
    """Print counts per layer and status, and the work report's headline figures."""
    svc = service()
    summary = svc.reader.summary()
    for layer in svc.registry:
        by_status = ", ".join(f"{k} {v}" for k, v in (summary[layer.id].by_status or {}).items())
        click.echo(f"{layer.id:<24} {summary[layer.id].count:>7}  {by_status}")
    click.echo("")
    for figure in report.headline(svc.reader, svc.figures):
        unit = figure.get("unit", "")
        click.echo(f"{figure['label']['zh']}: {figure['value']}{unit}")


@geoapp_cli.command("report")
@click.option("--year", help="The report's year: one of layers/figures/annual_<year>.yaml (default: the latest).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "docx", "xlsx"]),
    default="md",
    show_default=True,
    help="Markdown, Word or Excel.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (Markdown goes to standard output without it; Word and Excel need it).",
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="The report's language.")
def report_command(year: str | None, fmt: str, output: Path | None, lang: str) -> None:
    """Generate the annual work report from the data, with its consistency checks (the operator sees them all)."""
    from geoapp.core import report as annual_report
    from geoapp.core import report_files

    if fmt != "md" and output is None:
        raise click.UsageError(f"--format {fmt} writes a binary file: give --output FILE, e.g. --output report.{fmt}")
    svc = service()
    try:
        doc = annual_report.build(svc, year, lang=lang, checks=True)
    except InvalidParameter as exc:
        raise click.BadParameter(exc.message, param_hint="--year") from None
    data = report_files.write(doc, fmt)
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    output.write_bytes(data)
    click.echo(
        f"wrote the {doc.year} report ({fmt}, {lang}) to {output}: {len(doc.figures)} figures, "
        f"{len(doc.checks)} checks, {len(doc.failed)} do not add up",
        err=True,
    )


@geoapp_cli.command("publish")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the static public map goes: a symbolic link to the newest build, replaced atomically.",
)
@click.option(
    "--watch",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Keep running: every SECONDS, publish again if a layer has changed.",
)
def publish_command(out: Path, watch: float | None) -> None:
    """Write the public map (page, assets, each layer's public GeoJSON, gzip copies) as static files."""
    from flask import current_app

    from geoapp.web import publish

    app = current_app._get_current_object()
    try:
        if watch:
            publish.watch(app, out, watch, report=click.echo)
        else:
            result = publish.publish(app, out)
            click.echo(f"published {result.files} files to {out} -> {result.build.name}")
    except publish.PublishError as exc:
        raise click.ClickException(str(exc)) from None


user_cli = AppGroup("user", help="Staff accounts: add, list, disable, change a password, unlock.")
token_cli = AppGroup("token", help="Machine tokens for sensors and scripts (Authorization: Bearer).")
audit_cli = AppGroup("audit", help="The audit trail of every change.")
geoapp_cli.add_command(user_cli)
geoapp_cli.add_command(token_cli)
geoapp_cli.add_command(audit_cli)


def _roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    return accounts.check_roles(roles)


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_cli.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help=f"One of {', '.join(accounts.ROLES)}; repeatable.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt.")
def user_add(name: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Add a staff account."""
    accounts.check_name(name)
    roles = accounts.check_roles(roles)
    service().store.add_user(name, passwords().hash(_password(password_stdin)), roles, actor=CLI)
    click.echo(f"added user {name} ({', '.join(roles)})")


@user_cli.command("list")
def user_list() -> None:
    """List accounts with their roles."""
    for user in service().store.users():
        state = "disabled" if user.disabled else "active"
        click.echo(f"{user.name:<20} {','.join(user.roles):<28} {state:<9} since {user.created_at[:10]}")


@user_cli.command("disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Disable an account; its sessions end at once."""
    service().store.change_user(name, disabled=True, actor=CLI)
    click.echo(f"disabled user {name}")


@user_cli.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def user_passwd(name: str, password_stdin: bool) -> None:
    """Set a new password; the user's other sessions end and failed sign-ins are forgotten."""
    password_hash = passwords().hash(_password(password_stdin))
    store = service().store
    store.change_user(name, password_hash=password_hash, actor=CLI)
    store.clear_login_failures(name)
    click.echo(f"changed the password of {name}")


@user_cli.command("unlock")
@click.argument("name")
def user_unlock(name: str) -> None:
    """Forget the account's failed sign-ins from every address, so that it may sign in at once."""
    store = service().store
    if store.user(name) is None:
        raise click.ClickException(f"no user {name!r}")
    cleared = store.clear_login_failures(name, actor=CLI)
    click.echo(f"unlocked {name} ({cleared} failed sign-ins forgotten)")


@token_cli.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help=f"One of {', '.join(accounts.ROLES)}; repeatable.")
def token_add(name: str, roles: tuple[str, ...]) -> None:
    """Create a token and print it once; only its digest is kept."""
    accounts.check_name(name)
    roles = accounts.check_roles(roles)
    token, digest = accounts.new_token()
    service().store.add_token(name, digest, roles, actor=CLI)
    click.echo(token)
    click.echo(f"token {name} ({', '.join(roles)}): shown once, store it now", err=True)


@token_cli.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke a token; requests carrying it are refused from now on."""
    service().store.revoke_token(name, actor=CLI)
    click.echo(f"revoked token {name}")


@token_cli.command("list")
def token_list() -> None:
    """List tokens (names and roles; the tokens themselves are not kept)."""
    for token in service().store.tokens():
        state = f"revoked {token.revoked_at[:10]}" if token.revoked_at else "live"
        click.echo(f"{token.name:<20} {','.join(token.roles):<20} {state:<18} last write {token.last_used_at or '-'}")


@audit_cli.command("export")
@click.option("--since", required=True, help="First day to export, YYYY-MM-DD.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="CSV file (default: standard output).")
def audit_export(since: str, output: str | None) -> None:
    """Write the audit trail since a day as CSV (one row per change, old and new values as JSON).

    A text cell starting with = + - @, a tab or a carriage return gets a leading apostrophe, so that a
    spreadsheet shows it as text instead of running it as a formula (OWASP's advice on CSV injection).
    """
    try:
        day = dt.date.fromisoformat(since)
    except ValueError:
        raise click.BadParameter("must be a date YYYY-MM-DD", param_hint="--since") from None
    entries = service().store.audit(day.isoformat())
    with click.open_file(output or "-", "w", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "at", "actor", "actor_kind", "action", "layer", "fid", "field", "old", "new", "address"])
        for e in entries:
            changes = e.changes or {"": [None, None]}
            for field, (old, new) in changes.items():
                row = [e.id, e.at, e.actor, e.actor_kind, e.action, e.layer, e.fid, field, old, new, e.address]
                writer.writerow([_cell(value) for value in row])
    if output:
        click.echo(f"wrote {len(entries)} audit entries since {day} to {output}", err=True)


#: what makes a spreadsheet read a cell as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str | int | float:
    """A CSV cell: text as it is (defused when a spreadsheet would run it), numbers as numbers, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # starts with [ or {, or is true/false: never a formula
    return f"'{value}" if value.startswith(FORMULA_START) else value


@geoapp_cli.command("export")
@click.option("--layer", "layer_id", required=True, help="The layer to export (see `geoapp layers`).")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["geojson", "gpkg", "shp", "csv", "xlsx", "kml", "fgb"]),
    help="The file format (shp: a zip of Shapefiles with .prj, .cpg and fields.csv).",
)
@click.option("--crs", help="Output coordinate system: EPSG:n, gcj02 or bd09 (default EPSG:4326, WGS84).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: <layer>_<YYYYMMDD-HHMM>.<ext> in this folder).",
)
@click.option("--where", "where", multiple=True, metavar="FIELD=VALUE", help="Exact field value; repeatable.")
@click.option("--bbox", help="minlon,minlat,maxlon,maxlat in degrees (WGS84).")
@click.option("--public", is_flag=True, help="Only the public fields, as an anonymous download has them.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="Labels' language.")
def export_command(
    layer_id: str,
    fmt: str,
    crs: str | None,
    output: Path | None,
    where: tuple[str, ...],
    bbox: str | None,
    public: bool,
    lang: str,
) -> None:
    """Write every feature of a layer that the filters match as a file (the features API's filters)."""
    from geoapp.core.query import features_request
    from geoapp.io import exporter

    svc = service()
    layer = svc.registry.require(layer_id)
    args: dict[str, list[str]] = {}
    for condition in where:
        name, sep, value = condition.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{condition!r} is not FIELD=VALUE", param_hint="--where")
        if name in args:  # the same field twice: either value, for a field with allowed values
            if name not in {f.name for f in layer.fields if f.values is not None}:
                raise click.BadParameter(f"{name} given twice: only a field with allowed values takes several")
            args[name] = [f"{args[name][0]},{value}"]
        else:
            args[name] = [value]
    if bbox:
        args["bbox"] = [bbox]
    vis = "public" if public else "internal"
    made = exporter.export(
        svc.reader,
        svc.registry,
        layer.id,
        features_request(svc.reader, layer, args, visibility=vis).query,
        fmt=fmt,
        crs=exporter.output_crs(crs, fmt),
        visibility=vis,
        lang=lang,
        timezone=svc.timezone,
        clock=svc.clock,
        synthetic=svc.store.synthetic,
    )
    target = output or Path(made.fallback)
    target.write_bytes(made.content)
    click.echo(f"wrote {made.count} features of {layer.id} ({fmt}, {vis} fields) to {target}", err=True)


@geoapp_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layer", "layer_id", required=True, help="The layer to import into (see `geoapp layers`).")
@click.option("--crs", help="The file's coordinate system: EPSG:n, gcj02 (Amap) or bd09 (Baidu); default: its own.")
@click.option("--encoding", help="The text encoding of a CSV or of a Shapefile without .cpg (UTF-8, GBK, GB18030).")
@click.option(
    "--mode",
    type=click.Choice(["append", "replace", "upsert"]),
    default="append",
    show_default=True,
    help="append: add every row; replace: delete the layer's features first; upsert: update rows whose --key matches.",
)
@click.option("--key", help="With --mode upsert: the field whose value matches a row to a feature.")
@click.option("--column", "columns", multiple=True, metavar="HEADER=FIELD", help="Map a header to a field; repeatable.")
@click.option("--source-layer", help="The table of a GeoPackage or the sheet of a workbook (default: the only one).")
@click.option("--dry-run", is_flag=True, help="Check the file and print the report; write nothing.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="The report's language.")
def import_command(
    file: Path,
    layer_id: str,
    crs: str | None,
    encoding: str | None,
    mode: str,
    key: str | None,
    columns: tuple[str, ...],
    source_layer: str | None,
    dry_run: bool,
    lang: str,
) -> None:
    """Import a GeoJSON, GeoPackage, zipped Shapefile, CSV, XLSX or KML file into a layer: all rows or none."""
    from flask import current_app

    from geoapp import config
    from geoapp.io import importer

    svc = service()
    options = importer.Options(
        layer=layer_id,
        mode=mode,
        key=key,
        crs=crs,
        encoding=encoding,
        columns=importer.parse_columns(columns),
        source_layer=source_layer,
    )
    with _ImportProgress(file) as progress:
        try:
            rows = int(config.number(current_app.config, "GEOAPP_IMPORT_MAX_ROWS", minimum=1, integer=True))
            report = importer.run(file, svc.editing, CLI, options, dry_run=dry_run, max_rows=rows, progress=progress)
        except GeoappError as exc:
            raise click.ClickException(exc.message_in(lang)) from None
    click.echo(report.text(lang))
    if not report.ok:
        sys.exit(1)


class _ImportProgress:
    """A tqdm bar on standard error while an import reads, checks and writes (a terminal, or a large file)."""

    LARGE = 5 * 1024 * 1024

    def __init__(self, file: Path):
        self.show = sys.stderr.isatty() or file.stat().st_size > self.LARGE
        self.bar = None

    def __enter__(self):
        return self if self.show else None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=3 * max(total, 1), unit="row", file=sys.stderr, desc="import", leave=False)
        steps = {"read": 0, "check": 1, "write": 2}
        self.bar.set_description(stage)
        self.bar.n = steps.get(stage, 0) * max(total, 1) + done
        self.bar.refresh()

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


cases_cli = _Group("cases", help="City management cases: the hotline's tickets in, the indicators out.")
geoapp_cli.add_command(cases_cli)


@cases_cli.command("import-hotline")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--min-confidence", default=0.5, show_default=True, help="Tickets placed less surely are not imported.")
@click.option("--dry-run", is_flag=True, help="Geocode and report, write nothing.")
@click.option(
    "--unlocated", type=click.Path(dir_okay=False, path_type=Path), help="Write the tickets not located here (CSV)."
)
def cases_import_hotline(path: Path, min_confidence: float, dry_run: bool, unlocated: Path | None) -> None:
    """Import a 12345 hotline XLSX: each ticket geocoded on the district's roads (house numbers interpolated) and
    recorded as a case; the rows not read and the tickets not located are listed, never dropped silently."""
    report = service().cases.import_hotline(CLI, path, name=path.name, min_confidence=min_confidence, dry_run=dry_run)
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"{path.name}: {report['rows']} rows; {report['located']} located, {verb} "
        f"{report['located'] - len(report['already_imported']) if dry_run else report['imported']}, "
        f"{len(report['already_imported'])} imported before; {len(report['unlocated'])} not located; "
        f"{len(report['problems'])} rows not read"
    )
    for problem in report["problems"]:
        click.echo(f"  row {problem['row']} ({problem['column']}): {problem['reason']}")
    for item in report["unlocated"]:
        click.echo(
            f"  row {item['row']} ticket {item['ticket']}: {item['address']!r} not located "
            f"({item['reason']}, confidence {item['confidence']})"
        )
    if unlocated is not None:
        with unlocated.open("w", newline="", encoding="utf-8-sig") as out:
            writer = csv.DictWriter(out, ["row", "ticket", "address", "reason", "confidence", "method"])
            writer.writeheader()
            writer.writerows(report["unlocated"])


@cases_cli.command("indicators")
@click.option("--by", default="total", show_default=True, help="total, grid, squad, department, category, ...")
@click.option("--from", "first", help="First day of 立案 (YYYY-MM-DD, district time).")
@click.option("--to", "last", help="Last day of 立案 (YYYY-MM-DD, district time).")
def cases_indicators(by: str, first: str | None, last: str | None) -> None:
    """Print the indicators (应处置, 处置, 结案, 按期, the rates and the mean disposal hours) as CSV."""
    svc = service()
    zone = svc.timezone
    try:
        start = dt.datetime.combine(dt.date.fromisoformat(first), dt.time(0), zone) if first else None
        end = (
            dt.datetime.combine(dt.date.fromisoformat(last) + dt.timedelta(days=1), dt.time(0), zone) if last else None
        )
    except ValueError:
        raise click.BadParameter("a day is YYYY-MM-DD") from None
    rows = svc.cases.indicators(CLI, by, start=start, end=end)
    writer = csv.writer(sys.stdout)
    writer.writerow([f.name for f in dataclasses.fields(indicators.Indicator)])
    for row in rows:
        writer.writerow(list(row.as_dict().values()))
