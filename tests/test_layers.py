"""Layer definitions: every required layer is declared, and a bad definition is refused by name."""

from __future__ import annotations

import shutil

import pytest
import yaml

from geoapp.config import PROJECT_ROOT
from geoapp.core.layers import LayerError, Registry

LAYERS_DIR = PROJECT_ROOT / "layers"

REQUIRED = {
    "emergency_resources": {"Point"},
    "rain_gauges": {"Point"},
    "waterlogging_points": {"Point"},
    "underpass_culverts": {"Point", "LineString"},
    "underground_spaces": {"Point", "Polygon"},
    "construction_hoardings": {"Polygon", "LineString"},
    "heating_stations": {"Point"},
    "backstreet_repairs": {"LineString"},
    "manhole_covers": {"Point"},
    "cases": {"Point"},
    "grid_cells": {"Polygon"},
    "district_boundary": {"Polygon"},
    "roads": {"LineString"},
}


def test_every_layer_is_served_with_its_geometry(client):
    served = {layer["id"]: layer for layer in client.get("/api/layers").json["layers"]}
    assert set(served) == set(REQUIRED)
    for layer_id, types in REQUIRED.items():
        assert types <= set(served[layer_id]["geometry_types"]), layer_id


def test_context_layers_come_first_and_are_marked_as_backdrop(client):
    layers = client.get("/api/layers").json["layers"]
    assert {layers[0]["id"], layers[1]["id"]} == {"district_boundary", "roads"}
    assert [layer["context"] for layer in layers[:2]] == [True, True]
    assert not any(layer["context"] for layer in layers[2:])


# what the public must never see: phone numbers, contacts, contractors and staff notes
INTERNAL = {
    "waterlogging_points": {"contact_phone", "notes"},
    "underpass_culverts": {"keeper_phone"},
    "construction_hoardings": {"contractor", "notes"},
    "heating_stations": {"operator_phone"},
    "underground_spaces": {"contact"},
}


@pytest.mark.parametrize("layer_id", sorted(INTERNAL))
def test_internal_fields_reach_staff_and_never_the_public(app, client, layer_id):
    from geoapp.core.accounts import new_token
    from tests.conftest import SETUP

    token, digest = new_token()
    app.extensions["geoapp"].store.add_token("viewer-token", digest, ("viewer",), actor=SETUP)
    staff = {"Authorization": f"Bearer {token}"}
    url = f"/api/layers/{layer_id}"
    public_fields = {f["name"] for f in client.get(url).json["fields"]}
    staff_fields = {f["name"] for f in client.get(url, headers=staff).json["fields"]}
    assert INTERNAL[layer_id] <= staff_fields and not INTERNAL[layer_id] & public_fields
    public = client.get(f"{url}/features?limit=1000").json["features"]
    assert public and not any(INTERNAL[layer_id] & set(f["properties"]) for f in public)
    seen = client.get(f"{url}/features?limit=1000", headers=staff).json["features"]
    assert all(INTERNAL[layer_id] <= set(f["properties"]) for f in seen)


def test_hoardings_are_filtered_and_counted_by_the_campaigns_statuses(client):
    url = "/api/layers/construction_hoardings"
    layer = client.get(url).json
    labels = {v["value"]: v["label"]["zh"] for v in layer["status"]["values"]}
    assert labels == {"pending": "待整治", "in_progress": "整治中", "removed": "已整治", "under_construction": "未停工"}
    counts = {status: len(client.get(f"{url}/features?status={status}").json["features"]) for status in labels}
    assert sum(counts.values()) == layer["count"] and all(counts.values())
    refused = client.get(f"{url}/features?status=done")
    assert (
        refused.status_code == 400
        and "pending, in_progress, removed, under_construction" in refused.json["error"]["message"]
    )
    agencies = {v["label"]["zh"] for f in layer["fields"] if f["name"] == "agency" for v in f["values"]}
    assert agencies == {"城管局", "住建局"}


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
