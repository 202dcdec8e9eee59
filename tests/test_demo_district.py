"""The synthetic demo district: the work report's counts, placement on the map, determinism and a valid store."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
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
    for layer_id in ("heating_stations", "underground_spaces"):
        assert (metric[layer_id].distance(roads) >= 15).all(), layer_id
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
    assert not other["manhole_covers"].geometry.geom_equals(district["manhole_covers"].geometry).all()
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
