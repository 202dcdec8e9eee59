"""``flask --app wsgi geoapp ...``: create the store, list layers, print statistics."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from geoapp import report, service
from geoapp.errors import GeoappError

geoapp_cli = AppGroup("geoapp", help="Manage the one-map store.")


def init_app(app: Flask) -> None:
    app.cli.add_command(geoapp_cli)


def _fail(exc: GeoappError) -> None:
    raise click.ClickException(exc.message) from None


@geoapp_cli.command("init")
@click.option("--demo", is_flag=True, help="Fill the store with the synthetic demo district.")
@click.option("--force", is_flag=True, help="Replace an existing store (its data is lost).")
@click.option("--if-missing", is_flag=True, help="Do nothing when the store already exists (for make run).")
def init_command(demo: bool, force: bool, if_missing: bool) -> None:
    """Create the store with every declared layer."""
    svc = service()
    if if_missing and Path(svc.database).exists():
        click.echo(f"store exists: {svc.database}")
        return
    data = None
    if demo:
        from data import demo_district

        data = demo_district.build()
    try:
        store = svc.create(data, force=force, demo=demo)
    except GeoappError as exc:
        _fail(exc)
    total = sum(len(store.query(layer_id)) for layer_id in store.layers())
    what = "synthetic demo district" if demo else "empty layers"
    click.echo(f"created {svc.database}: {len(store.layers())} layers, {total} features ({what})")


@geoapp_cli.command("layers")
def layers_command() -> None:
    """List the layers with their feature counts."""
    try:
        engine = service().engine
    except GeoappError as exc:
        _fail(exc)
    for layer in engine.registry:
        counts = engine.counts(layer.id)
        click.echo(f"{layer.id:<24} {counts['count']:>7}  {layer.title.zh} / {layer.title.en}")


@geoapp_cli.command("stats")
def stats_command() -> None:
    """Print counts per layer and status, and the work report's headline figures."""
    try:
        engine = service().engine
    except GeoappError as exc:
        _fail(exc)
    for layer in engine.registry:
        counts = engine.counts(layer.id)
        by_status = ", ".join(f"{k} {v}" for k, v in counts.get("by_status", {}).items())
        click.echo(f"{layer.id:<24} {counts['count']:>7}  {by_status}")
    click.echo("")
    for figure in report.headline(engine):
        unit = figure.get("unit", "")
        click.echo(f"{figure['label']['zh']}: {figure['value']}{unit}")
