"""Download links on the pages: the one map's download section (its formats from the exporter, the district's
metric CRS from the store) and /progress's GIS files beside its ledgers, each answering with a file."""

from __future__ import annotations

import re
import shutil

import pytest

from geoapp.io import exporter
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, login


@pytest.fixture(scope="module")
def app(tmp_path_factory, demo_gpkg, password_hash):
    path = tmp_path_factory.mktemp("export_pages") / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test-secret", "GEOAPP_DATABASE": str(path), "ARGON2_PARAMETERS": CHEAP_ARGON2}
    )
    app.extensions["geoapp"].store.add_user("planner", password_hash, ("planner",), actor=SETUP)
    yield app
    app.extensions["geoapp"].close()


def _template(page: str) -> str:
    found = re.search(r'<template id="geoapp-download">(.*?)</template>', page, re.S)
    assert found, "the one map has no download section"
    return found.group(1)


def test_the_one_map_offers_every_format_and_the_districts_crs(app):
    page = app.test_client().get("/").get_data(as_text=True)
    section = _template(page)
    formats = re.findall(r'<select name="format">(.*?)</select>', section, re.S)[0]
    assert re.findall(r'<option value="([a-z]+)">', formats) == list(exporter.FORMATS)
    codes = re.findall(r'<option value="([^"]+)">', re.findall(r'<select name="crs">(.*?)</select>', section, re.S)[0])
    assert codes == ["EPSG:4326", "EPSG:4490", app.extensions["geoapp"].store.metric_crs, "gcj02", "bd09"]
    assert "下载数据" in section and "GCJ-02（高德、腾讯）" in section
    english = app.test_client().get("/?lang=en").get_data(as_text=True)
    assert "Download data" in _template(english)


def test_progress_links_the_gis_files_of_its_layer(app):
    client = app.test_client()
    login(client, "planner")
    page = client.get("/progress?layer=construction_hoardings").get_data(as_text=True)
    links = dict(re.findall(r'class="geoapp-export geoapp-gis-export" data-format="(\w+)" href="([^"]+)"', page))
    assert set(links) == {"gpkg", "shp", "kml"}
    for fmt, href in links.items():
        response = client.get(f"{href}?status=removed")  # the page's script adds the table's field filters
        assert response.status_code == 200 and response.mimetype == exporter.FORMATS[fmt].media_type
        assert int(response.headers["X-Feature-Count"]) > 0
