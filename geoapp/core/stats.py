"""The work report's headline figures, counted from the map data itself (so they cannot disagree)."""

from __future__ import annotations

from typing import Any

from geoapp.store.memindex import Engine

#: the report: 886 covers fixed = 110.75 % of the year's task, so the task was 800 covers
MANHOLE_ANNUAL_TARGET = 800

# (figure id, zh, en, layer, field filters)
FIGURES: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("waterlogging_points", "积水点", "Waterlogging points", "waterlogging_points", {}),
    ("underpass_culverts", "下穿式涵洞", "Underpass culverts", "underpass_culverts", {}),
    ("underground_spaces", "地下空间", "Underground spaces", "underground_spaces", {}),
    ("hoardings", "建筑围挡整治总数", "Hoardings in the campaign", "construction_hoardings", {}),
    ("hoardings_removed", "已整治围挡", "Hoardings removed", "construction_hoardings", {"status": "removed"}),
    (
        "hoardings_removed_urban_management",
        "其中城管局整治",
        "of which by the Urban Management Bureau",
        "construction_hoardings",
        {"status": "removed", "agency": "urban_management"},
    ),
    (
        "hoardings_removed_housing",
        "其中住建局整治",
        "of which by the Housing and Construction Bureau",
        "construction_hoardings",
        {"status": "removed", "agency": "housing"},
    ),
    (
        "hoardings_under_construction",
        "未停工围挡",
        "Hoardings at sites still under construction",
        "construction_hoardings",
        {"status": "under_construction"},
    ),
    (
        "hoardings_xinhua",
        "涉及新华区围挡",
        "Hoardings involving Xinhua District",
        "construction_hoardings",
        {"district": "xinhua"},
    ),
    ("hoardings_pending", "待整治围挡", "Hoardings pending", "construction_hoardings", {"status": "pending"}),
    ("heating_stations", "换热站", "Heat-exchange stations", "heating_stations", {}),
    ("heating_direct", "直供站", "Direct-supply stations", "heating_stations", {"supply_type": "direct"}),
    ("heating_transfer", "转供站", "Transfer-supply stations", "heating_stations", {"supply_type": "transfer"}),
    (
        "heating_transfer_converted",
        "转供站已转改直",
        "Transfer stations converted to direct",
        "heating_stations",
        {"supply_type": "transfer", "converted_to_direct": True},
    ),
    ("backstreets", "背街小巷排查", "Back streets surveyed", "backstreet_repairs", {}),
    ("backstreets_repaired", "背街小巷已修复", "Back streets repaired", "backstreet_repairs", {"status": "repaired"}),
    (
        "backstreets_under_works",
        "背街小巷施工中",
        "Back streets under works",
        "backstreet_repairs",
        {"status": "under_works"},
    ),
    ("manholes_fixed", "窨井盖已整治", "Manhole covers fixed", "manhole_covers", {"status": "fixed"}),
    ("manholes_to_fix", "窨井盖待整治", "Manhole covers to fix", "manhole_covers", {"status": "to_fix"}),
)


def headline(engine: Engine) -> list[dict[str, Any]]:
    """Each headline figure: id, zh/en label and value counted from the layers now."""
    out = []
    for figure_id, zh, en, layer_id, equals in FIGURES:
        gdf = engine.snapshot(layer_id).gdf
        selected = gdf.index.notna()
        for name, value in equals.items():
            selected &= (gdf[name] == value).fillna(False).to_numpy(dtype=bool)
        out.append({"id": figure_id, "label": {"zh": zh, "en": en}, "value": int(selected.sum())})
    fixed = next(f["value"] for f in out if f["id"] == "manholes_fixed")
    out.append(
        {
            "id": "manholes_target_pct",
            "label": {"zh": "窨井盖年度任务完成率", "en": "Manhole covers: share of the year's target"},
            "value": round(100 * fixed / MANHOLE_ANNUAL_TARGET, 2),
            "unit": "%",
            "target": MANHOLE_ANNUAL_TARGET,
        }
    )
    return out
