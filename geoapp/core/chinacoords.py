"""GCJ-02 (Amap, Tencent) and BD-09 (Baidu) coordinates, both ways, vectorised with numpy.

Neither system is in PROJ. GCJ-02 is WGS84 plus a published-by-reverse-engineering offset of a few
hundred metres; BD-09 is GCJ-02 plus a further rotation and shift. The forward formulas here are
those of gcoord 1.0.7 (the library the browser uses, ``node_modules/gcoord``), term for term, so
both sides agree to rounding; its out-of-China box is used unchanged (outside it GCJ-02 equals
WGS84, as in gcoord).

The inverses have no closed form. ``gcj02_to_wgs84`` and ``bd09_to_gcj02`` solve ``forward(w) = g``
by fixed-point iteration, ``w <- w - (forward(w) - g)``, until every point's forward image matches
to :data:`TOLERANCE` degrees (about 0.1 micrometre); each step works only on the points still
open. The offsets change slowly with position, so each step shrinks the error about a hundredfold
(measured: 1e-2, 6e-5, 4e-7, 3e-9, 7e-11 degrees), a little less in the last steps next to 105E
where the rule has a square root of the distance from that meridian; five to eight steps solve
every point of a 0.05-degree grid over the box. gcoord stops at 1e-6 degrees (about 0.15 m) and
inverts BD-09 with the approximate closed formula only (a few centimetres off), the start here.

Every function takes floats or numpy arrays (any shape) and returns the same kind.
"""

from __future__ import annotations

import numpy as np

# Krasovsky 1940, as the GCJ-02 rule uses it
_A = 6378245.0
_EE = 0.006693421622965823
_BAIDU = np.pi * 3000.0 / 180.0

#: gcoord's "roughly in China" box (lon 72.004..137.8347, lat 0.8293..55.8271): outside it GCJ-02 is WGS84
CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)

#: how closely an inverse's forward image matches the input, in degrees (1e-12 degrees is about 0.1 micrometre)
TOLERANCE = 1e-12
_MAX_STEPS = 40


def in_china_box(lon, lat):
    """True where ``(lon, lat)`` is inside gcoord's box, where the GCJ-02 offset applies."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= CHINA_BOX[0]) & (lon <= CHINA_BOX[2]) & (lat >= CHINA_BOX[1]) & (lat <= CHINA_BOX[3])


def _transform_lat(x, y):
    ret = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += ((20 * np.sin(6 * x * np.pi) + 20 * np.sin(2 * x * np.pi)) * 2) / 3
    ret += ((20 * np.sin(y * np.pi) + 40 * np.sin((y / 3) * np.pi)) * 2) / 3
    ret += ((160 * np.sin((y / 12) * np.pi) + 320 * np.sin((y * np.pi) / 30)) * 2) / 3
    return ret


def _transform_lon(x, y):
    ret = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += ((20 * np.sin(6 * x * np.pi) + 20 * np.sin(2 * x * np.pi)) * 2) / 3
    ret += ((20 * np.sin(x * np.pi) + 40 * np.sin((x / 3) * np.pi)) * 2) / 3
    ret += ((150 * np.sin((x / 12) * np.pi) + 300 * np.sin((x / 30) * np.pi)) * 2) / 3
    return ret


def _delta(lon, lat):
    d_lon = _transform_lon(lon - 105, lat - 35)
    d_lat = _transform_lat(lon - 105, lat - 35)
    rad_lat = (lat / 180) * np.pi
    magic = np.sin(rad_lat)
    magic = 1 - _EE * magic * magic
    sqrt_magic = np.sqrt(magic)
    d_lon = (d_lon * 180) / ((_A / sqrt_magic) * np.cos(rad_lat) * np.pi)
    d_lat = (d_lat * 180) / (((_A * (1 - _EE)) / (magic * sqrt_magic)) * np.pi)
    return d_lon, d_lat


def _arrays(lon, lat):
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return scalar, lon, lat


def _out(scalar, lon, lat):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def _gcj(lon, lat):
    inside = in_china_box(lon, lat)
    with np.errstate(invalid="ignore"):
        d_lon, d_lat = _delta(lon, lat)
    return np.where(inside, lon + d_lon, lon), np.where(inside, lat + d_lat, lat)


def _gcj_unboxed(lon, lat):
    d_lon, d_lat = _delta(lon, lat)
    return lon + d_lon, lat + d_lat


def _bd(lon, lat):
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _BAIDU)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BAIDU)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_approx_inverse(lon, lat):
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BAIDU)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BAIDU)
    return z * np.cos(theta), z * np.sin(theta)


def _solve(forward, lon, lat, start_lon, start_lat):
    """Solve ``forward(w) == (lon, lat)`` by fixed-point steps from the start, each on the points still open."""
    w_lon, w_lat = start_lon.copy(), start_lat.copy()
    open_ = np.arange(lon.size)
    for _ in range(_MAX_STEPS):
        f_lon, f_lat = forward(w_lon[open_], w_lat[open_])
        d_lon = f_lon - lon[open_]
        d_lat = f_lat - lat[open_]
        still = (np.abs(d_lon) > TOLERANCE) | (np.abs(d_lat) > TOLERANCE)
        if not still.any():
            break
        open_, d_lon, d_lat = open_[still], d_lon[still], d_lat[still]
        w_lon[open_] -= d_lon
        w_lat[open_] -= d_lat
    return w_lon, w_lat


def wgs84_to_gcj02(lon, lat):
    """WGS84 -> GCJ-02 (the offset Amap and Tencent maps show); unchanged outside :data:`CHINA_BOX`."""
    scalar, lon, lat = _arrays(lon, lat)
    return _out(scalar, *_gcj(lon, lat))


def gcj02_to_wgs84(lon, lat):
    """GCJ-02 -> WGS84, the exact inverse of :func:`wgs84_to_gcj02` (to :data:`TOLERANCE` degrees).

    As in gcoord, a point outside :data:`CHINA_BOX` is taken as it is. Inside, the offset is
    solved for without the box: within a few hundred metres of the box's edge a GCJ-02 point can
    have its WGS84 point just outside (where the forward conversion adds no offset, so no exact
    preimage exists); this gives the one continuous answer there, where gcoord's loop never ends.
    """
    scalar, lon, lat = _arrays(lon, lat)
    inside = in_china_box(lon, lat)
    finite = np.isfinite(lon) & np.isfinite(lat)
    w_lon, w_lat = lon.copy(), lat.copy()
    todo = inside & finite
    if todo.any():
        s_lon, s_lat = _solve(_gcj_unboxed, lon[todo], lat[todo], lon[todo], lat[todo])
        w_lon[todo] = s_lon
        w_lat[todo] = s_lat
    return _out(scalar, w_lon, w_lat)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 -> BD-09 (Baidu's offset on top of GCJ-02)."""
    scalar, lon, lat = _arrays(lon, lat)
    return _out(scalar, *_bd(lon, lat))


def bd09_to_gcj02(lon, lat):
    """BD-09 -> GCJ-02, the exact inverse of :func:`gcj02_to_bd09` (the usual closed formula, then refined)."""
    scalar, lon, lat = _arrays(lon, lat)
    finite = np.isfinite(lon) & np.isfinite(lat)
    g_lon, g_lat = lon.copy(), lat.copy()
    if finite.any():
        b_lon, b_lat = lon[finite], lat[finite]
        s_lon, s_lat = _bd_approx_inverse(b_lon, b_lat)
        s_lon, s_lat = _solve(_bd, b_lon, b_lat, s_lon, s_lat)
        g_lon[finite] = s_lon
        g_lat[finite] = s_lat
    return _out(scalar, g_lon, g_lat)


def wgs84_to_bd09(lon, lat):
    """WGS84 -> BD-09 (through GCJ-02, as gcoord does)."""
    scalar, lon, lat = _arrays(lon, lat)
    return _out(scalar, *_bd(*_gcj(lon, lat)))


def bd09_to_wgs84(lon, lat):
    """BD-09 -> WGS84 (through GCJ-02), the exact inverse of :func:`wgs84_to_bd09`."""
    scalar, lon, lat = _arrays(lon, lat)
    g_lon, g_lat = bd09_to_gcj02(lon, lat)
    return _out(scalar, *gcj02_to_wgs84(g_lon, g_lat))
