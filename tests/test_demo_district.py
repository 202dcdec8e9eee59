"""The synthetic demo district: the work report's counts, placement on the map, determinism and a valid store."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import yaml
from geopandas.testing import assert_geodataframe_equal

from data import demo_district
from geoapp.core.layers import Registry
from geoapp.store import create_store
from tests.frames import layer_frame

LAYERS_DIR = Path(__file__).resolve().parents[1] / "layers"
METRIC_CRS = "EPSG:4547"
COUNTS = {
    "district_boundary": 1,
    "underpass_culverts": 14,
    "waterlogging_points": 6,
    "underground_spaces": 81,
    "construction_hoardings": 43,
    "heating_stations": 114,
    "backstreet_repairs": 10,
    "manhole_covers": 950,
    "emergency_resources": 24,
    "rain_gauges": 8,
}
RESOURCE_KINDS = {"pump_truck": 6, "pump_station": 4, "depot": 4, "duty_post": 6, "squad": 4}
# A digest of the attributes of each layer the demo had before the emergency resources and rain gauges (default
# seed): adding a layer must not change them. Change one on purpose and its digest here changes with it.
OLDER_LAYERS = {
    "district_boundary": "77587247cdf91004",
    "roads": "d49a12f164b75453",
    "grid_cells": "bf364f9e743928c0",
    "underpass_culverts": "9739a7786aedceab",
    "waterlogging_points": "e732220f08f8d0f2",
    "backstreet_repairs": "68c7531fda665a79",
    "heating_stations": "1b03a6c00db97a1b",
    "underground_spaces": "69e9dd639bf8a0c7",
    "construction_hoardings": "07b26479dc959f56",
    "manhole_covers": "03da0eccbe3679bd",
}
SUBCLASS = {
    "water_supply": "01",
    "sewage": "02",
    "storm": "03",
    "power": "05",
    "street_light": "06",
    "telecom": "07",
    "heat": "10",
    "gas": "11",
}


@pytest.fixture(scope="module")
def district() -> dict[str, gpd.GeoDataFrame]:
    return demo_district.build()


@pytest.fixture(scope="module")
def metric(district) -> dict[str, gpd.GeoDataFrame]:
    """The district in metres, where every distance below is measured."""
    return {layer_id: gdf.to_crs(METRIC_CRS) for layer_id, gdf in district.items()}


@pytest.fixture(scope="module")
def layer_registry() -> Registry:
    return Registry.load(LAYERS_DIR)


@pytest.fixture(scope="module")
def streets(metric) -> gpd.GeoDataFrame:
    roads = metric["roads"]
    return roads[roads["kind"] != "railway"]


@pytest.fixture(scope="module")
def railway(metric):
    roads = metric["roads"]
    (line,) = roads.loc[roads["kind"] == "railway", "geometry"]
    return line


def _attributes_digest(gdf: gpd.GeoDataFrame) -> str:
    rows = gdf.drop(columns="geometry").astype(str).values.tolist()
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()[:16]


def test_every_layer_has_its_declared_fields_in_wgs84(district, layer_registry):
    assert set(district) == set(layer_registry.ids)
    for layer in layer_registry:
        gdf = district[layer.id]
        assert gdf.crs == "EPSG:4326"
        assert gdf.geometry.name == "geometry"
        assert list(gdf.columns) == [f.name for f in layer.fields if not f.computed] + ["geometry"]
        assert set(gdf.geom_type) <= set(layer.geometry), layer.id


def test_counts_follow_the_work_report(district):
    assert {layer_id: len(district[layer_id]) for layer_id in COUNTS} == COUNTS
    assert district["district_boundary"]["name"].tolist() == ["XX区（演示数据）"]


def test_values_are_allowed_by_the_layer_definitions(district, layer_registry):
    for layer in layer_registry:
        gdf = district[layer.id]
        for field in layer.fields:
            if field.computed:
                continue
            values = gdf[field.name].dropna()
            if field.required:
                assert len(values) == len(gdf), (layer.id, field.name)
            if field.allowed is not None:
                assert set(values) <= set(field.allowed), (layer.id, field.name)
            if field.pattern is not None:
                assert values.map(lambda v, p=field.pattern: re.fullmatch(p, v) is not None).all(), (
                    layer.id,
                    field.name,
                )


def test_hoarding_breakdown(district):
    gdf = district["construction_hoardings"]
    local = gdf[gdf["district"] == "local"]
    breakdown = local.groupby(["status", "agency"]).size().to_dict()
    assert breakdown.pop(("removed", "urban_management")) == 19
    assert breakdown.pop(("removed", "housing")) == 9
    assert breakdown.pop(("under_construction", "housing")) == 9
    assert sum(n for (status, _), n in breakdown.items() if status == "pending") == 3
    assert sum(breakdown.values()) == 3
    xinhua = gdf[gdf["district"] == "xinhua"]
    assert len(xinhua) == 3
    assert set(xinhua["status"]) == {"in_progress"}
    removed = gdf[gdf["status"] == "removed"]
    assert removed["removed_on"].str.startswith("2023-").all()
    assert set(removed["treatment"]) <= {"levelled", "greened"}
    assert gdf.loc[gdf["status"] != "removed", "removed_on"].isna().all()
    assert gdf["site"].is_unique


def test_heating_supply_types(district):
    gdf = district["heating_stations"]
    assert gdf["supply_type"].value_counts().to_dict() == {"direct": 66, "transfer": 48}
    assert gdf["converted_to_direct"].eq(True).all()
    assert set(gdf["status"]) == {"running"}
    assert gdf["name"].is_unique


def test_manhole_covers_ledger(district):
    gdf = district["manhole_covers"]
    assert gdf["status"].value_counts().to_dict() == {"fixed": 886, "to_fix": 64}
    assert gdf["code"].is_unique
    for code, kind in zip(gdf["code"], gdf["kind"], strict=True):
        assert re.fullmatch(r"41990101[0-9]{8}", code)
        assert code[8:10] == SUBCLASS[kind]
    fixed = gdf[gdf["status"] == "fixed"]
    assert set(fixed["defect"]) == {"none"}
    assert fixed["fixed_on"].str.startswith("2023-").all()
    to_fix = gdf[gdf["status"] == "to_fix"]
    assert set(to_fix["defect"]) <= {"detached", "subsided", "corroded"}
    assert to_fix["fixed_on"].isna().all()


def test_backstreet_repairs(district, metric):
    gdf = district["backstreet_repairs"]
    assert gdf["status"].value_counts().to_dict() == {"repaired": 8, "under_works": 2}
    works = gdf[gdf["status"] == "under_works"]
    assert set(works["agency"]) == {"housing"}
    assert works["completed_on"].isna().all()
    repaired = gdf[gdf["status"] == "repaired"]
    assert (repaired["agency"] == "urban_management").sum() > len(repaired) / 2
    assert repaired["completed_on"].between("2023-01-01", "2023-10-27").all()
    assert (repaired["repaired_area_m2"] > 0).all()
    assert metric["backstreet_repairs"].length.between(150, 600).all()


def test_road_network_and_railway(metric, streets, railway):
    roads = metric["roads"]
    assert (roads["kind"] == "railway").sum() == 1
    assert {"湛南路", "开源路"} <= set(streets["name"])
    assert streets["name"].is_unique
    assert set(streets["kind"]) <= {"arterial", "secondary", "branch"}
    assert set(roads.geom_type) == {"LineString"}
    assert sum(not line.intersection(railway).is_empty for line in streets.geometry) >= 14


def test_underpasses_sit_at_road_railway_crossings(metric, streets, railway):
    culverts = metric["underpass_culverts"]
    by_name = dict(zip(streets["name"], streets.geometry, strict=True))
    for point, road in zip(culverts.geometry, culverts["road"], strict=True):
        assert point.distance(railway) < 1
        assert point.distance(by_name[road]) < 1
    # One underpass per crossing, never two crowding the same crossroads.
    xy = np.column_stack([culverts.geometry.x, culverts.geometry.y])
    gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(len(xy), 1)].min() > 30
    assert {"湛南路", "开源路"} <= set(culverts["road"])
    assert culverts["clearance_m"].between(2.8, 4.5).all()
    assert set(culverts["closure_depth_cm"]) <= {25, 30}


def test_waterlogging_points_lie_on_their_roads(metric, streets):
    points = metric["waterlogging_points"]
    by_name = dict(zip(streets["name"], streets.geometry, strict=True))
    for point, road in zip(points.geometry, points["road"], strict=True):
        assert point.distance(by_name[road]) < 3
    assert set(points["status"]) == {"dry"}
    # Near culverts or crossroads, but not on top of a culvert.
    culverts = shapely.union_all(metric["underpass_culverts"].geometry.values)
    assert (points.distance(culverts) > 10).all()


def test_everything_lies_inside_the_boundary(metric):
    # Half a metre of slack covers the round trip through WGS84 of features cut to the boundary.
    boundary = metric["district_boundary"].geometry.iloc[0].buffer(0.5)
    for layer_id, gdf in metric.items():
        assert gdf.geometry.within(boundary).all(), layer_id


def test_manholes_sit_on_streets(metric, streets):
    distance = metric["manhole_covers"].distance(shapely.union_all(streets.geometry.values))
    assert (distance <= 3).all()
    assert set(metric["manhole_covers"]["road"]) == set(streets["name"])


def test_hoardings_stand_beside_roads(metric):
    roads = shapely.union_all(metric["roads"].geometry.values)
    distance = metric["construction_hoardings"].distance(roads)
    assert distance.between(5, 30).all()


def test_buildings_keep_clear_of_roads(metric):
    roads = shapely.union_all(metric["roads"].geometry.values)
    for layer_id in ("heating_stations", "underground_spaces", "rain_gauges"):
        assert (metric[layer_id].distance(roads) >= 15).all(), layer_id
    resources = metric["emergency_resources"]
    buildings = resources[resources["kind"].isin(["pump_station", "depot", "squad"])]
    assert len(buildings) == 12
    assert (buildings.distance(roads) >= 15).all()
    assert set(metric["underground_spaces"].geom_type) == {"Point", "Polygon"}


def test_grid_cells_are_about_a_hectare(metric):
    cells = metric["grid_cells"]
    areas = cells.area
    assert 9_000 <= areas.median() <= 10_001
    assert areas.min() >= 100
    assert cells["code"].str.fullmatch(r"419901[0-9]{10}").all()
    assert cells["code"].is_unique
    assert 6 <= cells["community"].nunique() <= 10
    assert set(cells["squad"]) == {"第一中队", "第二中队", "第三中队", "第四中队", "第五中队", "第六中队"}
    boundary = metric["district_boundary"].geometry.iloc[0]
    assert areas.sum() == pytest.approx(boundary.area, rel=0.01)


def test_same_seed_same_district_other_seed_differs(district):
    again = demo_district.build()
    for layer_id, gdf in district.items():
        assert_geodataframe_equal(gdf, again[layer_id])
    other = demo_district.build(seed=7)
    assert {layer_id: len(other[layer_id]) for layer_id in COUNTS} == COUNTS
    assert other["emergency_resources"]["kind"].value_counts().to_dict() == RESOURCE_KINDS
    for layer_id in ("manhole_covers", "emergency_resources", "rain_gauges"):
        assert not other[layer_id].geometry.geom_equals(district[layer_id].geometry).all(), layer_id
    assert not np.allclose(other["district_boundary"].total_bounds, district["district_boundary"].total_bounds)


def test_every_layer_validates_into_a_store(district, layer_registry, tmp_path):
    store = create_store(layer_registry, str(tmp_path / "demo.gpkg"), district, force=True, demo=True)
    try:
        for layer_id, gdf in district.items():
            assert len(layer_frame(store, layer_id)) == len(gdf), layer_id
        hoardings = layer_frame(store, "construction_hoardings")
        assert hoardings["length_m"].notna().all()
        assert layer_frame(store, "grid_cells")["area_m2"].median() == pytest.approx(10_000, abs=1)
    finally:
        store.close()


# -- emergency resources and rain gauges ------------------------------------------------------


def _xy(gdf: gpd.GeoDataFrame) -> np.ndarray:
    return np.column_stack([gdf.geometry.x, gdf.geometry.y])


def _nearest(points: gpd.GeoDataFrame, to: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``points``, the position in ``to`` of the nearest one and its distance."""
    gaps = np.hypot(*(_xy(points)[:, None, :] - _xy(to)[None, :, :]).transpose(2, 0, 1))
    return gaps.argmin(axis=1), gaps.min(axis=1)


def test_older_layers_unchanged_by_the_flood_resources(district):
    # the target dates (due_on) came later, from a generator of their own: every older column is as it was
    older = {layer_id: district[layer_id].drop(columns=["due_on"], errors="ignore") for layer_id in OLDER_LAYERS}
    assert {layer_id: _attributes_digest(gdf) for layer_id, gdf in older.items()} == OLDER_LAYERS


@pytest.mark.parametrize("generator", ["_emergency_resources", "_rain_gauges"])
def test_new_layers_draw_from_their_own_generators(district, monkeypatch, generator):
    """Drawing differently for one of the new layers changes that layer only."""
    original = getattr(demo_district, generator)

    def drawing_more(rng, *args):
        rng.random(17)
        return original(rng, *args)

    monkeypatch.setattr(demo_district, generator, drawing_more)
    changed = demo_district.build()
    layer_id = generator.removeprefix("_")
    assert not changed[layer_id].equals(district[layer_id])
    for other_id, gdf in district.items():
        if other_id != layer_id:
            assert_geodataframe_equal(gdf, changed[other_id])


def test_emergency_resources_inventory(district):
    gdf = district["emergency_resources"]
    assert gdf["kind"].value_counts().to_dict() == RESOURCE_KINDS
    assert gdf["name"].is_unique
    units = {"pump_truck": "m3h", "pump_station": "m3h", "depot": "bags", "duty_post": "people", "squad": "people"}
    assert (gdf["capacity_unit"] == gdf["kind"].map(units)).all()
    ranges = {"pump_truck": (100, 500), "pump_station": (500, 3000), "depot": (500, 5000)}
    ranges |= {"duty_post": (2, 6), "squad": (10, 40)}
    for kind, (low, high) in ranges.items():
        assert gdf.loc[gdf["kind"] == kind, "capacity"].between(low, high).all(), kind
    people = gdf[gdf["capacity_unit"] == "people"]
    assert (people["capacity"] == people["capacity"].round()).all()
    assert gdf["state"].value_counts().to_dict() == {"available": 19, "deployed": 3, "out_of_service": 2}
    # A duty post's unit is the duty team of its waterlogging point (checked below); every other unit is marked demo.
    assert gdf.loc[gdf["kind"] != "duty_post", "unit"].str.contains("演示").all()
    assert gdf["contact"].str.fullmatch(r"[^\s0-9]{2,4}").all()
    assert gdf["contact_phone"].str.fullmatch(r"0000-[0-9]{7}").all()
    assert gdf["contact_phone"].is_unique


def test_emergency_resources_sit_by_the_flood_spots_they_serve(metric, streets, railway):
    resources = metric["emergency_resources"]
    culverts, spots = metric["underpass_culverts"], metric["waterlogging_points"]
    street_lines = shapely.union_all(streets.geometry.values)
    by_kind = {kind: resources[resources["kind"] == kind] for kind in RESOURCE_KINDS}
    # Pump stations beside an underpass each, rated as the culvert's own pump.
    stations = by_kind["pump_station"]
    nearest, distance = _nearest(stations, culverts)
    assert distance.max() < 60 and len(set(nearest)) == len(stations)
    assert stations["capacity"].tolist() == culverts["pump_capacity_m3h"].iloc[nearest].tolist()
    assert (stations.distance(railway) >= 15).all()
    # A duty post at every waterlogging point, kept by the point's duty team.
    posts = by_kind["duty_post"]
    nearest, distance = _nearest(posts, spots)
    assert distance.max() < 15 and sorted(nearest) == list(range(len(spots)))
    assert posts["unit"].tolist() == spots["duty_team"].iloc[nearest].tolist()
    # Pump trucks parked at the kerb, a few hundred metres from an underpass or waterlogging point.
    trucks = by_kind["pump_truck"]
    flood = shapely.union_all([*culverts.geometry.values, *spots.geometry.values])
    assert (trucks.distance(street_lines) <= 15).all()
    assert trucks.distance(flood).between(50, 350).all()
    assert trucks["name"].str.slice(0, 4).tolist() == [
        "第一中队",
        "第二中队",
        "第三中队",
        "第四中队",
        "第五中队",
        "第六中队",
    ]
    # Depots and squads on a street front, one of each per street office and for the whole district.
    for kind in ("depot", "squad"):
        assert by_kind[kind].distance(street_lines).between(15, 60).all(), kind
        assert by_kind[kind]["unit"].nunique() == 4, kind
    # Nothing stands on top of another resource, and everything is within reach of a monitored feature.
    xy = _xy(resources)
    gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(len(xy), 1)].min() >= 10
    monitored = shapely.union_all(
        [
            g
            for layer_id in ("waterlogging_points", "underpass_culverts", "underground_spaces")
            for g in metric[layer_id].geometry
        ]
    )
    assert (resources.distance(monitored) < 2000).all()


def test_the_nearest_pump_is_not_always_available(metric):
    """Some flood spot's nearest pump cannot be sent, so the nearest available pump is another one."""
    rules = yaml.safe_load((LAYERS_DIR / "flood" / "rules.yaml").read_text(encoding="utf-8"))["resources"]
    resources = metric[rules["layer"]]
    pumps = resources[resources[rules["kind_field"]].isin(rules["pump_kinds"])]
    available = pumps[rules["state_field"]] == rules["available"]
    assert 0 < (~available).sum() < len(pumps)
    for layer_id in ("underpass_culverts", "waterlogging_points"):
        nearest, _ = _nearest(metric[layer_id], pumps)
        nearest_available, _ = _nearest(metric[layer_id], pumps[available])
        if (pumps.index[nearest] != pumps[available].index[nearest_available]).any():
            return
    pytest.fail("every flood spot's nearest pump is available")


def test_rain_gauges_spread_over_the_district(district, metric):
    gdf = district["rain_gauges"]
    assert gdf["code"].tolist() == [f"RG-{n:02d}" for n in range(1, 9)]
    assert gdf["name"].is_unique and gdf["name"].str.endswith("雨量站").all()
    kinds = gdf["kind"].value_counts().to_dict()
    assert kinds["automatic"] >= 6 and 1 <= kinds.get("manual", 0) <= 2
    assert gdf["operator_phone"].str.fullmatch(r"0000-[0-9]{7}").all()
    # A 3 x 3 grid less one node: at least 700 m apart, reaching across most of the district.
    xy = _xy(metric["rain_gauges"])
    gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(len(xy), 1)].min() >= 700
    west, south, east, north = metric["rain_gauges"].total_bounds
    assert east - west > 2500 and north - south > 1800
