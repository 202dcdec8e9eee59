"""The annual report generated from the store: its figures are the map's counts, its sentences the work report's,
its consistency checks flag what does not add up; the public sees the figures, staff and the command line the checks.

One app for the module (a copy of the demo store); the test that changes the store comes last.
"""

from __future__ import annotations

import io
import re
import shutil

import geopandas as gpd
import pytest
import yaml
from docx import Document
from openpyxl import load_workbook

from geoapp.config import PROJECT_ROOT
from geoapp.core import stats
from geoapp.core.layers import LayerError
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, Clock, login

#: 2023-11-14 22:13:20 UTC, which is 2023-11-15 06:13 in Asia/Shanghai
NOW = 1_700_000_000.0
HOARDINGS_SENTENCE = "开展43处建筑围挡拆除提升工程专项整治，截至目前，已整治28处（其中19处为城管局、9处为住建局）"
HOARDING = "/api/layers/construction_hoardings/features"
COUNTED = PROJECT_ROOT / "layers" / "figures" / "report.yaml"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, demo_gpkg):
    path = tmp_path_factory.mktemp("report") / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    return path


@pytest.fixture(scope="module")
def app(store_path, password_hash):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "GEOAPP_DATABASE": str(store_path),
            "ARGON2_PARAMETERS": CHEAP_ARGON2,
            "CLOCK": Clock(NOW),
        }
    )
    app.extensions["geoapp"].store.add_user("planner", password_hash, ("planner",), actor=SETUP)
    yield app
    app.extensions["geoapp"].close()


def _staff(app):
    client = app.test_client()
    _, csrf = login(client, "planner")
    return client, {"X-CSRFToken": csrf}


def _sheet(data: bytes, name: str) -> dict[str, dict]:
    """A sheet of the report's workbook as {id: {header: value}} (the id in column B)."""
    sheet = load_workbook(io.BytesIO(data))[name]
    rows = list(sheet.iter_rows(values_only=True))
    return {row[1]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}


def _count(frame, where: dict) -> int:
    mask = frame.index == frame.index
    for field, value in where.items():  # one value, or a list of which any counts
        mask &= frame[field].isin(value if isinstance(value, list) else [value])
    return int(mask.sum())


def test_a_report_naming_an_unknown_figure_stops_the_app(tmp_path, registry):
    layers = tmp_path / "layers"
    shutil.copytree(PROJECT_ROOT / "layers", layers)
    annual = layers / "figures" / "annual_2023.yaml"
    text = annual.read_text(encoding="utf-8")
    annual.write_text(text.replace("已整治{hoardings_removed}处", "已整治{hoardings_removd}处"), encoding="utf-8")
    with pytest.raises(LayerError) as refused:
        create_app({"TESTING": True, "SECRET_KEY": "x", "GEOAPP_LAYERS": str(layers), "GEOAPP_DATABASE": "x.gpkg"})
    message = str(refused.value)
    assert str(annual) in message
    assert "sections.hoardings.sentences.0.zh: unknown figure 'hoardings_removd'" in message
    annual.write_text(text.replace("total: stated_heating_stations", "total: stated_heat"), encoding="utf-8")
    with pytest.raises(LayerError) as refused:
        stats.load_figures(layers, registry)
    assert "sections.heating.checks.heating_stated_sum: unknown figure 'stated_heat'" in str(refused.value)
    annual.write_text(text.replace("{street_stalls_cleared}余处", "{street_stalls_cleared:,}余处"), encoding="utf-8")
    with pytest.raises(LayerError, match=r"sections\.cityscape\.sentences\.0\.zh: write a figure as"):
        stats.load_figures(layers, registry)
    annual.write_text(text, encoding="utf-8")
    assert stats.load_figures(layers, registry).reports[2023].year == 2023


def test_the_generated_figures_equal_independent_counts(client, demo_data):
    workbook = client.get("/reports/annual?year=2023&format=xlsx")
    assert workbook.status_code == 200
    assert "attachment" in workbook.headers["Content-Disposition"]
    figures = _sheet(workbook.data, "数字")
    hoardings, heating = demo_data["construction_hoardings"], demo_data["heating_stations"]
    covers = demo_data["manhole_covers"]
    removed = hoardings[hoardings.status == "removed"]
    expected = {
        "hoardings": len(hoardings),
        "hoardings_removed": len(removed),
        "hoardings_removed_urban_management": int((removed.agency == "urban_management").sum()),
        "hoardings_removed_housing": int((removed.agency == "housing").sum()),
        "heating_stations": len(heating),
        "heating_direct": int((heating.supply_type == "direct").sum()),
        "heating_transfer": int((heating.supply_type == "transfer").sum()),
        "manholes_fixed": int((covers.status == "fixed").sum()),
        "backstreets": len(demo_data["backstreet_repairs"]),
        "waterlogging_points": len(demo_data["waterlogging_points"]),
    }
    assert expected["hoardings"] == 43 and expected["hoardings_removed"] == 28  # the demo follows the report
    for fid, value in expected.items():
        assert figures[fid]["数值"] == value, fid
        assert figures[fid]["类别"] == "地图统计"
    # every counted figure the report shows is its layer's count with pandas, not through the app's reader
    declared = {f["id"]: f for f in yaml.safe_load(COUNTED.read_text(encoding="utf-8"))["figures"]}
    shown = [fid for fid, row in figures.items() if row["类别"] == "地图统计"]
    assert len(shown) > 20
    for fid in shown:
        figure = declared[fid]
        if "share_of" in figure:
            value = round(100 * figures[figure["share_of"]]["数值"] / figure["target"], 2)
        else:
            value = _count(demo_data[figure["layer"]], figure.get("where", {}))
        assert figures[fid]["数值"] == value, fid
    assert figures["manholes_target_pct"]["数值"] == 110.75
    # what the map does not hold is entered, as numbers, with the report's sentence it comes from
    assert figures["street_stalls_cleared"]["数值"] == 8000
    assert figures["street_stalls_cleared"]["类别"] == "工作报告"
    assert "约8000余处" in figures["street_stalls_cleared"]["来源"]
    assert (figures["gas_pipeline_target"]["数值"], figures["gas_pipeline_fitted"]["数值"]) == (102000, 78000)
    assert figures["gas_pipeline_rate"]["数值"] == 73.62


def test_the_markdown_speaks_the_reports_words_and_flags_what_does_not_add_up(runner):
    result = runner.invoke(args=["geoapp", "report", "--year", "2023", "--format", "md"])
    assert result.exit_code == 0, result.output
    md = result.output
    assert md.startswith("# XX区城市管理局2023年工作总结")
    assert HOARDINGS_SENTENCE in md
    assert "数据截至 2023-11-15 06:13（Asia/Shanghai）" in md
    assert "演示数据" in md  # the store is the synthetic demo district
    assert "## 三、推进围挡拆除工作" in md
    assert "共清理占道经营约8000余处" in md
    assert "居民管道天然气目标任务10.2万户，自闭阀和金属软管已完成加装7.8万户，完成率73.62%" in md
    checks = md.split("## 一致性核查", 1)[1]
    rows = {line for line in checks.splitlines() if line.startswith("| ")}

    def row(text: str) -> str:
        found = [r for r in rows if text in r]
        assert len(found) == 1, text
        return found[0]

    assert row("66 + 49 = 115").startswith("| 不符 |")  # the report's own sum does not make its 114
    assert "114" in row("66 + 49 = 115")
    gas = row("7.8万 ÷ 10.2万 = 76.47%")
    assert gas.startswith("| 不符 |") and "73.62%" in gas
    assert row("19 + 9 = 28，与报告所列已整治围挡 28 相符").startswith("| 相符 |")
    assert row("66 + 48 = 114").startswith("| 相符 |")  # the map's stations add up
    assert row("报告为 49，地图现有 48").startswith("| 不符 |")
    assert row("886 ÷ 800 = 110.75%").startswith("| 相符 |")
    summary = re.search(r"共 (\d+) 项核查，(\d+) 项不符。", checks)
    assert summary and int(summary.group(2)) == sum(r.startswith("| 不符 |") for r in rows) >= 4

    english = runner.invoke(args=["geoapp", "report", "--format", "md", "--lang", "en"])
    assert english.exit_code == 0, english.output
    assert "so far 28 have been dealt with (19 by the Urban Management Bureau, 9 by the Housing" in english.output
    assert "Figures as of 2023-11-15 06:13 (Asia/Shanghai)" in english.output
    assert "78,000 ÷ 102,000 = 76.47%, not 73.62%" in english.output
    assert "## Consistency checks" in english.output


def test_the_command_writes_word_and_excel_and_refuses_what_it_cannot(runner, tmp_path):
    binary = runner.invoke(args=["geoapp", "report", "--year", "2023", "--format", "docx"])
    assert binary.exit_code != 0 and "--output" in binary.output
    year = runner.invoke(args=["geoapp", "report", "--year", "2022"])
    assert year.exit_code != 0 and "year must be one of 2023" in year.output
    fmt = runner.invoke(args=["geoapp", "report", "--format", "pdf"])
    assert fmt.exit_code != 0 and all(f in fmt.output for f in ("md", "docx", "xlsx"))
    lang = runner.invoke(args=["geoapp", "report", "--lang", "fr"])
    assert lang.exit_code != 0 and "zh" in lang.output and "en" in lang.output

    docx_path = tmp_path / "report.docx"
    done = runner.invoke(args=["geoapp", "report", "--year", "2023", "--format", "docx", "--output", str(docx_path)])
    assert done.exit_code == 0, done.output
    document = Document(str(docx_path))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert "三、推进围挡拆除工作" in headings and "一致性核查" in headings  # the operator gets the checks
    paragraphs = [p for p in document.paragraphs if HOARDINGS_SENTENCE in p.text]
    assert len(paragraphs) == 1
    bold = {run.text for run in paragraphs[0].runs if run.bold}
    assert {"43", "28", "19", "9"} <= bold  # counted on the map: in bold
    figures, checks = document.tables
    cells = [[c.text for c in r.cells] for r in figures.rows]
    assert ["已整治围挡", "28", "", "地图统计", "建筑围挡（状态=已整治）"] in cells
    failed = [[c.text for c in r.cells] for r in checks.rows if r.cells[0].text == "不符"]
    assert any("66 + 49 = 115" in row[-1] for row in failed)

    xlsx_path = tmp_path / "report.xlsx"
    args = ["geoapp", "report", "--format", "xlsx", "--output", str(xlsx_path), "--lang", "en"]
    done = runner.invoke(args=args)
    assert done.exit_code == 0, done.output
    data = xlsx_path.read_bytes()
    assert load_workbook(io.BytesIO(data)).sheetnames == ["Report", "Figures", "Checks"]
    checks = _sheet(data, "Checks")
    sums = checks["heating_stated_sum"]
    assert (sums["Expected"], sums["Found"], sums["Difference"], sums["Result"]) == (114, 115, 1, "Does not add up")
    gas = checks["gas_pipeline_share"]
    assert (gas["Expected"], gas["Found"], gas["Difference"]) == (76.47, 73.62, -2.85)
    assert all(isinstance(gas[k], float) for k in ("Expected", "Found", "Difference"))
    assert checks["hoardings_stated_agencies"]["Result"] == "Adds up"
    assert _sheet(data, "Figures")["hoardings_removed"]["Value"] == 28


def test_the_public_gets_the_figures_and_staff_also_the_checks(app, client):
    page = client.get("/reports/annual?year=2023")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    text = html.split('<div class="geoapp-report-text">', 1)[1].split('<section id="figures">', 1)[0]
    assert HOARDINGS_SENTENCE in re.sub(r"<[^>]+>", "", text)
    assert "演示数据：地图统计的数字来自合成的演示辖区" in html
    assert 'id="checks"' not in html and "一致性核查" not in html and "66 + 49 = 115" not in html
    assert "一致性核查" not in client.get("/reports/annual?format=md").get_data(as_text=True)
    public_book = load_workbook(io.BytesIO(client.get("/reports/annual?format=xlsx").data))
    assert public_book.sheetnames == ["报告", "数字"]
    public_doc = Document(io.BytesIO(client.get("/reports/annual?format=docx").data))
    assert len(public_doc.tables) == 1 and not any(p.text == "一致性核查" for p in public_doc.paragraphs)
    english = client.get("/reports/annual?lang=en").get_data(as_text=True)
    assert "Consistency checks" not in english and "generated from the one-map data" in english

    refused = client.get("/reports/annual?format=pdf", headers={"Accept": "application/json"})
    assert refused.status_code == 400 and refused.json["error"]["parameter"] == "format"
    assert "md, docx, xlsx" in refused.json["error"]["message"]
    unknown = client.get("/reports/annual?year=2022", headers={"Accept": "application/json"})
    assert unknown.status_code == 400 and unknown.json["error"]["parameter"] == "year"
    assert "2023" in unknown.json["error"]["message"]

    staff, _ = _staff(app)
    html = staff.get("/reports/annual?year=2023").get_data(as_text=True)
    assert 'id="checks"' in html and "66 + 49 = 115" in html and "76.47%" in html
    assert 'data-check="heating_stated_sum"' in html
    assert "一致性核查" in staff.get("/reports/annual?format=md").get_data(as_text=True)
    staff_book = load_workbook(io.BytesIO(staff.get("/reports/annual?format=xlsx").data))
    assert staff_book.sheetnames == ["报告", "数字", "核查"]
    download = staff.get("/reports/annual?format=docx")
    assert download.headers["Content-Disposition"] == 'attachment; filename="annual-report-2023-zh.docx"'
    assert "no-store" in download.headers["Cache-Control"]  # what staff see is never cached


def test_a_hoarding_marked_removed_changes_the_report_and_its_checks(app, runner, store_path):
    """Last: it changes the module's store."""
    planner, headers = _staff(app)
    pending = planner.get(f"{HOARDING}?status=pending&limit=1").json["features"][0]
    changed = planner.patch(
        f"{HOARDING}/{pending['id']}",
        json={
            "properties": {"status": "removed", "removed_on": "2023-11-14", "treatment": "greened"},
            "version": pending["version"],
        },
        headers=headers,
    )
    assert changed.status_code == 200, changed.json
    on_disk = gpd.read_file(store_path, layer="construction_hoardings")
    assert int((on_disk.status == "removed").sum()) == 29  # counted apart from the app

    md = runner.invoke(args=["geoapp", "report", "--format", "md"]).output
    assert "开展43处建筑围挡拆除提升工程专项整治，截至目前，已整治29处" in md
    assert "报告为 28，地图现有 29（差 +1）" in md
    checks = _sheet(planner.get("/reports/annual?format=xlsx").data, "核查")
    removed = checks["hoardings_stated_removed"]
    assert (removed["应为"], removed["实为"], removed["差值"], removed["结果"]) == (28, 29, 1, "不符")
    assert checks["hoardings_counted_agencies"]["结果"] == "相符"  # the map still adds up
    html = app.test_client().get("/reports/annual").get_data(as_text=True)
    assert "已整治<strong" in html and ">29</strong>处" in html
