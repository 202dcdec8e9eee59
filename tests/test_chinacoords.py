"""GCJ-02 and BD-09 both ways, cross-checked against gcoord (the library the browser uses) run in node."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from pyproj import Geod

from geoapp.config import PROJECT_ROOT
from geoapp.core import chinacoords as cc

NODE = shutil.which("node") or "/usr/bin/node"
SCRIPT = PROJECT_ROOT / "tests" / "js" / "gcoord_convert.js"
GEOD = Geod(ellps="WGS84")

#: the district (synthetic demo data sits around here)
DISTRICT = (113.3, 33.73)


def _grid() -> np.ndarray:
    """A grid over mainland China and Hainan (every 1.5 degrees) and random points in the box, plus the district."""
    lon, lat = np.meshgrid(np.arange(73.0, 135.1, 1.5), np.arange(18.0, 53.6, 1.5))
    rng = np.random.default_rng(11)
    random = np.column_stack([rng.uniform(73, 135, 500), rng.uniform(18, 53.5, 500)])
    return np.vstack([np.column_stack([lon.ravel(), lat.ravel()]), random, [DISTRICT]])


#: points on and just beyond each edge of gcoord's out-of-China box, where the two must agree exactly
EDGES = np.array(
    [
        [72.004, 30.0],
        [72.0039, 30.0],
        [137.8347, 45.0],
        [137.8348, 45.0],
        [100.0, 0.8293],
        [100.0, 0.8292],
        [120.0, 55.8271],
        [120.0, 55.8272],
        [2.35, 48.85],  # Paris
        [-74.0, 40.7],  # New York
    ]
)


PAIRS = ("WGS84>GCJ02", "GCJ02>WGS84", "WGS84>BD09", "BD09>WGS84", "GCJ02>BD09", "BD09>GCJ02")
#: gcoord's inverse loops forever near the box's edge (its step leaves the box, where the offset is nil)
FORWARD = ("WGS84>GCJ02", "WGS84>BD09", "GCJ02>BD09")


def _gcoord(points: np.ndarray, pairs=PAIRS) -> dict[str, np.ndarray]:
    run = subprocess.run(
        [NODE, str(SCRIPT)],
        input=json.dumps({"points": points.tolist(), "pairs": list(pairs)}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = json.loads(run.stdout)
    assert out.pop("version") == "1.0.7"
    return {key: np.array(value, dtype=float) for key, value in out.items()}


@pytest.fixture(scope="module")
def grid() -> np.ndarray:
    return _grid()


@pytest.fixture(scope="module")
def gcoord(grid) -> dict[str, np.ndarray]:
    return _gcoord(grid)


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def test_the_forward_conversions_match_gcoord(grid, gcoord):
    lon, lat = grid[:, 0], grid[:, 1]
    g_lon, g_lat = cc.wgs84_to_gcj02(lon, lat)
    assert np.abs(g_lon - gcoord["WGS84>GCJ02"][:, 0]).max() < 1e-9
    assert np.abs(g_lat - gcoord["WGS84>GCJ02"][:, 1]).max() < 1e-9
    b_lon, b_lat = cc.wgs84_to_bd09(lon, lat)
    assert np.abs(b_lon - gcoord["WGS84>BD09"][:, 0]).max() < 1e-9
    assert np.abs(b_lat - gcoord["WGS84>BD09"][:, 1]).max() < 1e-9
    gb_lon, gb_lat = cc.gcj02_to_bd09(lon, lat)
    assert np.abs(gb_lon - gcoord["GCJ02>BD09"][:, 0]).max() < 1e-9
    assert np.abs(gb_lat - gcoord["GCJ02>BD09"][:, 1]).max() < 1e-9
    # the offsets are real: hundreds of metres for GCJ-02, more again for BD-09
    shift = _metres(lon, lat, g_lon, g_lat)
    assert shift.min() > 10 and shift.max() < 1200
    assert np.median(_metres(lon, lat, b_lon, b_lat)) > np.median(shift) + 300


def test_the_inverses_agree_with_gcoord_within_its_own_tolerance(grid, gcoord):
    # gcoord stops at 1e-6 degrees (about 0.1 m) and inverts BD-09 with the approximate closed formula
    lon, lat = grid[:, 0], grid[:, 1]
    w_lon, w_lat = cc.gcj02_to_wgs84(lon, lat)
    assert _metres(w_lon, w_lat, *gcoord["GCJ02>WGS84"].T).max() < 0.5
    g_lon, g_lat = cc.bd09_to_gcj02(lon, lat)
    assert _metres(g_lon, g_lat, *gcoord["BD09>GCJ02"].T).max() < 0.5
    w_lon, w_lat = cc.bd09_to_wgs84(lon, lat)
    assert _metres(w_lon, w_lat, *gcoord["BD09>WGS84"].T).max() < 0.5


def test_round_trips_across_china_are_exact_and_at_least_as_good_as_gcoords(grid):
    lon, lat = grid[:, 0], grid[:, 1]
    ours = {}
    for name, forward, inverse in (
        ("gcj02", cc.wgs84_to_gcj02, cc.gcj02_to_wgs84),
        ("bd09", cc.wgs84_to_bd09, cc.bd09_to_wgs84),
        ("gcj02>bd09", cc.gcj02_to_bd09, cc.bd09_to_gcj02),
    ):
        back = inverse(*forward(lon, lat))
        ours[name] = _metres(lon, lat, *back)
        assert ours[name].max() < 0.001, name  # a millimetre; the issue asks for 0.5 m
    # gcoord's own round trips, on gcoord's forward images, for the comparison
    theirs_gcj = _gcoord(np.column_stack(cc.wgs84_to_gcj02(lon, lat)), ["GCJ02>WGS84"])["GCJ02>WGS84"]
    theirs_bd = _gcoord(np.column_stack(cc.wgs84_to_bd09(lon, lat)), ["BD09>WGS84"])["BD09>WGS84"]
    gcoord_gcj = _metres(lon, lat, *theirs_gcj.T)
    gcoord_bd = _metres(lon, lat, *theirs_bd.T)
    assert ours["gcj02"].max() <= gcoord_gcj.max()
    assert ours["bd09"].max() <= gcoord_bd.max()
    assert gcoord_gcj.max() < 0.5 and gcoord_bd.max() < 0.5


def test_the_inverse_solves_the_forward_to_the_tolerance(grid):
    lon, lat = grid[:, 0], grid[:, 1]  # all well inside the box
    w_lon, w_lat = cc.gcj02_to_wgs84(lon, lat)
    f_lon, f_lat = cc.wgs84_to_gcj02(w_lon, w_lat)
    assert np.abs(f_lon - lon).max() <= cc.TOLERANCE and np.abs(f_lat - lat).max() <= cc.TOLERANCE
    g_lon, g_lat = cc.bd09_to_gcj02(lon, lat)
    b_lon, b_lat = cc.gcj02_to_bd09(g_lon, g_lat)
    assert np.abs(b_lon - lon).max() <= cc.TOLERANCE and np.abs(b_lat - lat).max() <= cc.TOLERANCE


def test_the_edges_of_the_china_box_follow_gcoord_exactly():
    theirs = _gcoord(EDGES, FORWARD)
    inside = cc.in_china_box(EDGES[:, 0], EDGES[:, 1])
    assert inside.tolist() == [True, False, True, False, True, False, True, False, False, False]
    for key, function in (("WGS84>GCJ02", cc.wgs84_to_gcj02), ("WGS84>BD09", cc.wgs84_to_bd09)):
        x, y = function(EDGES[:, 0], EDGES[:, 1])
        assert np.abs(x - theirs[key][:, 0]).max() < 1e-9 and np.abs(y - theirs[key][:, 1]).max() < 1e-9, key
    # outside the box GCJ-02 is WGS84 itself, both ways
    for function in (cc.wgs84_to_gcj02, cc.gcj02_to_wgs84):
        x, y = function(EDGES[~inside, 0], EDGES[~inside, 1])
        assert np.array_equal(x, EDGES[~inside, 0]) and np.array_equal(y, EDGES[~inside, 1])
    # inside, at the edge, the inverse ends (where gcoord's does not) and solves the offset without the box
    x, y = cc.gcj02_to_wgs84(EDGES[inside, 0], EDGES[inside, 1])
    d_lon, d_lat = cc._delta(x, y)
    assert np.abs(x + d_lon - EDGES[inside, 0]).max() < 1e-11 and np.abs(y + d_lat - EDGES[inside, 1]).max() < 1e-11


def test_floats_in_floats_out_and_arrays_keep_their_shape():
    lon, lat = cc.wgs84_to_gcj02(*DISTRICT)
    assert isinstance(lon, float) and isinstance(lat, float)
    back = cc.gcj02_to_wgs84(lon, lat)
    assert isinstance(back[0], float)
    assert _metres(*DISTRICT, *back) < 0.001
    square = np.array([[113.2, 113.3], [113.4, 113.5]])
    x, y = cc.bd09_to_wgs84(square, square - 80)
    assert x.shape == (2, 2) and y.shape == (2, 2)


def test_missing_values_stay_missing_and_do_not_disturb_the_others():
    lon = np.array([113.3, np.nan, 113.4])
    lat = np.array([33.73, 33.8, np.nan])
    for function in (cc.wgs84_to_gcj02, cc.gcj02_to_wgs84, cc.bd09_to_gcj02, cc.bd09_to_wgs84, cc.wgs84_to_bd09):
        x, y = function(lon, lat)
        assert np.isfinite(x[0]) and np.isfinite(y[0])
        assert np.isnan(x[1]) or np.isnan(y[1])
        assert np.isnan(x[2]) or np.isnan(y[2])
    ref = cc.gcj02_to_wgs84(113.3, 33.73)
    assert cc.gcj02_to_wgs84(lon, lat)[0][0] == ref[0]
