"""A synthetic 12345-hotline export (XLSX) whose tickets name the demo district's roads.

Nothing here is real: ticket numbers, times, addresses and texts are drawn from the seed. Most
addresses are house numbers on the district's streets (numbers below the shortest street's range, about
280, and the branch streets' 28); some are crossings of a west-east and a south-north street, some
misspell a road by a character or drop its suffix, some give a road alone, and about 5 % cannot be
placed at all (roads of other districts, another district's name, an estate without a road); about 1 %
have no address, which the reader reports as a problem of the row.

Run ``python -m data.demo_hotline OUT.xlsx [--rows N] [--seed S]``.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from openpyxl import Workbook

from data.demo_district import BRANCH_STREETS, EW_STREETS, NS_STREETS

__all__ = ["write_sample"]

TITLE = "12345热线工单导出（合成数据，非真实工单）"
HEADERS = ("工单编号", "来电时间", "诉求地址", "诉求内容", "诉求类别")
STREETS = tuple(name for name, _ in (*EW_STREETS, *NS_STREETS))
MAIN_NUMBERS = 260  # below the shortest main street's last number (体育路, 282)
BRANCH_NUMBERS = 26  # below the shortest branch street's (胜利街, 28)
#: misspellings a caller or an operator makes: one character off, another suffix, no suffix
NEAR_MISSES = {
    "湛南路": "湛兰路",
    "建设路": "建没路",
    "开源路": "开元路",
    "矿工路": "旷工路",
    "团结路": "团洁路",
    "育才路": "育材路",
    "长青路": "长清路",
    "人民路": "人民街",
    "和平路": "和平",
}
#: addresses no road of the district matches
ELSEWHERE = (
    "花园路{n}号",
    "金水路{n}号",
    "农业路{n}号",
    "经三路{n}号",
    "紫荆山路{n}号",
    "YY区湛南路{n}号",
    "锦华小区{n}号楼",
)
QUALIFIERS = ("附近", "门口", "对面", "旁", "东侧", "西侧")
CROSSINGS = ("{a}与{b}交叉口", "{a}{b}口", "{a}和{b}交叉口附近", "{a}、{b}路口")
CATEGORIES = (
    ("市容环境/占道经营", "有商贩在人行道上摆摊占道经营，影响通行"),
    ("环境卫生/暴露垃圾", "路边垃圾堆积多日无人清运"),
    ("市政设施/井盖破损", "井盖破损下陷，存在安全隐患"),
    ("防汛/道路积水", "雨后道路积水严重，车辆无法通行"),
    ("市容环境/小广告", "电线杆和墙面贴满小广告"),
    ("环境污染/餐饮油烟", "饭店油烟直排，扰民"),
    ("市政设施/路灯不亮", "一段路灯晚上不亮"),
    ("动物管理/流浪狗", "有流浪狗追咬行人"),
    ("建筑施工/工地扬尘", "工地未覆盖，扬尘严重"),
    ("市容环境/夜市占道", "夜市摊点占用车行道"),
    ("其他", "反映路面脏乱，长期无人保洁"),
)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def write_sample(path: str | Path, *, seed: int = 2023, rows: int = 200) -> int:
    """Write a synthetic hotline export of ``rows`` tickets to ``path``; return how many rows it holds."""
    rng = np.random.default_rng(seed)
    book = Workbook()
    sheet = book.active
    sheet.title = "工单"
    book.properties.title = TITLE
    book.properties.description = "synthetic data: no ticket, time or address in it is real"
    sheet.append([TITLE])
    sheet.append(list(HEADERS))
    start = datetime(2023, 5, 1)
    for i in range(rows):
        received = start + timedelta(minutes=int(rng.integers(0, 153 * 24 * 60)))
        category, description = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        # a fifth of the exports write the time as text, as when a sheet was pasted from the web system
        when = received.strftime("%Y-%m-%d %H:%M") if rng.random() < 0.2 else received
        sheet.append([f"SX2023{i + 1:06d}", when, _address(rng), description, category])
        if isinstance(when, datetime):
            sheet.cell(row=sheet.max_row, column=2).number_format = "yyyy-mm-dd hh:mm"
    book.save(path)
    return rows


def _address(rng: np.random.Generator) -> str:
    """One address: mostly a house number, then crossings, misspellings, roads alone, elsewhere and none."""
    kind = rng.choice(
        ["house", "crossing", "near_miss", "road", "elsewhere", "empty"], p=[0.66, 0.12, 0.08, 0.08, 0.05, 0.01]
    )
    prefix = "XX区" if rng.random() < 0.5 else ""
    if kind == "empty":
        return ""
    if kind == "elsewhere":
        return ELSEWHERE[int(rng.integers(len(ELSEWHERE)))].format(n=int(rng.integers(1, 300)))
    if kind == "crossing":
        a = EW_STREETS[int(rng.integers(len(EW_STREETS)))][0]
        b = NS_STREETS[int(rng.integers(len(NS_STREETS)))][0]
        a, b = (a, b) if rng.random() < 0.5 else (b, a)
        return prefix + CROSSINGS[int(rng.integers(len(CROSSINGS)))].format(a=a, b=b)
    if kind == "road":
        return prefix + STREETS[int(rng.integers(len(STREETS)))] + ("中段", "沿线", "")[int(rng.integers(3))]
    if kind == "near_miss":
        road = list(NEAR_MISSES.values())[int(rng.integers(len(NEAR_MISSES)))]
        return f"{prefix}{road}{int(rng.integers(1, MAIN_NUMBERS))}号"
    if rng.random() < 0.85:
        road, number = STREETS[int(rng.integers(len(STREETS)))], int(rng.integers(1, MAIN_NUMBERS))
    else:
        road, number = BRANCH_STREETS[int(rng.integers(len(BRANCH_STREETS)))], int(rng.integers(1, BRANCH_NUMBERS))
    digits = str(number).translate(FULL_WIDTH) if rng.random() < 0.1 else str(number)
    unit = "号院" if rng.random() < 0.1 else "号"
    qualifier = QUALIFIERS[int(rng.integers(len(QUALIFIERS)))] if rng.random() < 0.2 else ""
    return f"{prefix}{road}{digits}{unit}{qualifier}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic 12345-hotline XLSX export of the demo district.")
    parser.add_argument("out", type=Path, help="the .xlsx file to write")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args(argv)
    written = write_sample(args.out, seed=args.seed, rows=args.rows)
    print(f"{args.out}: {written} synthetic hotline tickets")


if __name__ == "__main__":
    main()
