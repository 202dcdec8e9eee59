"""Layer definitions: every required layer is declared, and a bad definition is refused by name."""

from __future__ import annotations

import shutil

import pytest
import yaml

from geoapp.config import PROJECT_ROOT
from geoapp.core.layers import LayerError, Registry

LAYERS_DIR = PROJECT_ROOT / "layers"

REQUIRED = {
    "waterlogging_points": {"Point"},
    "underpass_culverts": {"Point", "LineString"},
    "underground_spaces": {"Point", "Polygon"},
    "construction_hoardings": {"Polygon", "LineString"},
    "heating_stations": {"Point"},
    "backstreet_repairs": {"LineString"},
    "manhole_covers": {"Point"},
    "grid_cells": {"Polygon"},
    "district_boundary": {"Polygon"},
    "roads": {"LineString"},
}


def test_every_layer_is_declared_with_its_geometry(registry):
    assert set(registry.ids) == set(REQUIRED)
    for layer_id, types in REQUIRED.items():
        assert types <= set(registry[layer_id].geometry)


def test_context_layers_draw_under_the_others(registry):
    ids = registry.ids
    assert {ids[0], ids[1]} == {"district_boundary", "roads"}


def test_internal_fields_are_declared_internal(registry):
    internal = {layer.id: {f.name for f in layer.fields if not f.public} for layer in registry}
    assert {"contact_phone", "notes"} <= internal["waterlogging_points"]
    assert {"keeper_phone"} <= internal["underpass_culverts"]
    assert {"contractor", "notes"} <= internal["construction_hoardings"]
    assert {"operator_phone"} <= internal["heating_stations"]
    assert {"contact"} <= internal["underground_spaces"]


def test_hoarding_vocabularies_follow_the_campaign(registry):
    layer = registry["construction_hoardings"]
    assert layer.field("status").allowed == ("pending", "in_progress", "removed", "under_construction")
    assert [c.label.zh for c in layer.field("agency").values] == ["城管局", "住建局"]
    assert [c.label.zh for c in layer.field("district").values] == ["本区", "新华区"]
    assert layer.field("length_m").computed == "length"


def _copy_layers(tmp_path, src):
    target = tmp_path / "layers"
    shutil.copytree(src, target)
    return target


def _edit(path, change):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _field(data, name):
    return next(f for f in data["fields"] if f["name"] == name)


BAD = [
    ("unknown field type", lambda d: _field(d, "name").update(type="text"), "fields.0(name).type"),
    ("popup names no field", lambda d: d["popup"].append("depth"), "popup field 'depth'"),
    ("status without colour", lambda d: _field(d, "status")["values"][0].pop("color"), "status_field 'status'"),
    ("duplicate field", lambda d: d["fields"].append(dict(_field(d, "road"))), "duplicate field names: road"),
    ("reserved field name", lambda d: _field(d, "notes").update(name="fid"), "'fid' is reserved"),
    ("unknown group", lambda d: d.update(group="weather"), "group"),
    ("unknown key", lambda d: d.update(colour="red"), "colour: Extra inputs are not permitted"),
    ("id differs from file", lambda d: d.update(id="ponding_points"), "must match the file name"),
    ("default outside vocabulary", lambda d: _field(d, "status").update(default="wet"), "must be one of"),
    ("bad pattern", lambda d: _field(d, "contact_phone").update(pattern="(["), "not a regular expression"),
    ("internal status", lambda d: _field(d, "status").update(visibility="internal"), "must be public"),
]


@pytest.mark.parametrize(("case", "change", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_definition_is_refused_naming_file_and_field(tmp_path, registry, case, change, expected):
    layers = _copy_layers(tmp_path, LAYERS_DIR)
    path = layers / "waterlogging_points.yaml"
    _edit(path, change)
    with pytest.raises(LayerError) as info:
        Registry.load(layers)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_app_refuses_to_start_with_a_bad_layer(tmp_path):
    from geoapp.web import create_app

    layers = _copy_layers(tmp_path, LAYERS_DIR)
    _edit(layers / "roads.yaml", lambda d: d.update(geometry=["Curve"]))
    with pytest.raises(LayerError, match=r"roads\.yaml: geometry\.0"):
        create_app({"GEOAPP_LAYERS": str(layers), "GEOAPP_DATABASE": str(tmp_path / "x.gpkg")})
