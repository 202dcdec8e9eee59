/*
 * The planners' progress page (/progress): one campaign layer (hoardings, back streets, manhole
 * covers) on a map beside the table of its rows, which stay in step: a row picked flies the map to
 * its feature and opens the popup; a feature opened on the map is marked in the table; with "only
 * what the map shows" ticked, moving the map filters the table. Above them the campaign's figures
 * by status and by agency, and what was done each month. Each part is a module of
 * static/js/map/progress/; this entry makes the ``view`` they share and wires them together.
 *
 * Editors (the server marks the layer ``editable``) get the edit form, loaded on demand with its
 * module, so viewers never load the editing code; after a save or a delete the table, the figures
 * and the map are asked for again. Values reach the page as DOM text only (lib/dom.js).
 */
import { Api } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { el } from "../lib/dom.js";
import { fill } from "../lib/format.js";
import { baseControls, contextLayers, firstView } from "../map/base.js";
import { layerDef } from "../map/layers.js";
import { legendControl } from "../map/legend.js";
import { foldable } from "../map/panel.js";
import { exportLinks } from "../map/progress/exports.js";
import { filterBar } from "../map/progress/filters.js";
import { progressLayer } from "../map/progress/layer.js";
import { asOfText } from "../map/progress/look.js";
import { monthsChart } from "../map/progress/months.js";
import { viewQuery } from "../map/progress/query.js";
import { rowsSource } from "../map/progress/rows.js";
import { summaryPanel } from "../map/progress/summary.js";
import { rowsTable } from "../map/progress/table.js";
import { makeShift } from "../map/shift.js";
import { statusLine } from "../map/status.js";

const MOVE_SETTLE_MS = 250;

/** The map's view as a bbox parameter "w,s,e,n" (WGS84). */
function viewBbox(map, shift) {
  const b = map.getBounds();
  const [w, s] = shift.toData(Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90));
  const [e, n] = shift.toData(Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90));
  return [w, s, e, n].map((v) => v.toFixed(6)).join(",");
}

async function progress(map, groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  const text = cfg.text;
  baseControls(map, text);
  const status = statusLine(map);
  contextLayers(map, cfg.context, shift);
  const layer = layerDef(cfg.layer);
  const form = document.querySelector(".geoapp-progress-filters");

  // what tests read: window.geoapp.state
  const state = { map, cfg, loads: 0, answer: null, mapRows: null, failures: 0 };
  // what the page's parts share
  const view = {
    map,
    cfg,
    text,
    shift,
    layer,
    state,
    api: new Api({ base: cfg.api, csrf: cfg.csrf }),
    status: (line) => status.show(line),
    editor: null,
  };
  view.query = viewQuery(view, form);
  const { query } = view;
  const source = rowsSource(view);
  const summary = summaryPanel(view);
  const months = monthsChart(view);
  const exports = exportLinks(view);
  const asOf = document.querySelector(".geoapp-asof");
  let table = null;
  const drawn = progressLayer(view, groups[layer.id], layer, { onOpen: (fid) => table.select(fid) });

  async function loadTable() {
    query.syncUrl();
    exports();
    table.busy();
    let answer;
    try {
      answer = await source.table();
    } catch (err) {
      state.failures += 1;
      table.failed(err);
      return;
    }
    if (!answer) return; // a newer request took over
    state.answer = answer;
    table.render(answer);
    summary(answer.summary);
    months(answer.summary);
    asOf.textContent = asOfText(answer.asOf, cfg.timeZone);
    state.loads += 1;
  }

  async function loadMapRows() {
    let rows;
    try {
      rows = await source.set();
    } catch (err) {
      state.failures += 1;
      status.show(fill(text.loadFailed, { message: err.message }));
      return;
    }
    if (!rows) return;
    drawn.setRows(rows);
    state.mapRows = rows.length;
  }

  const reload = () => Promise.all([loadTable(), loadMapRows()]);
  table = rowsTable(view, {
    onSort: loadTable,
    onPage: loadTable,
    onPick: (row) => drawn.focus(row),
    onEdit: (row) => view.editor && view.editor.open(row.id),
  });
  filterBar(view, form, {
    onChange: reload,
    onView: (ticked) => {
      if (ticked) query.state.bbox = viewBbox(map, shift);
      loadTable();
    },
  });

  const legend = legendControl([layer], text).addTo(map);
  if (layer.progress.dueField) {
    const row = el("div", { class: "geoapp-legend-row" }, [
      el("span", { class: "geoapp-overdue-mark", text: "!" }),
      el("span", { text: text.overdue }),
    ]);
    legend.getContainer().querySelector(".geoapp-legend-layer").appendChild(row);
  }
  foldable(map, legend.getContainer(), { label: text.legend, iconName: "legend" });

  const shared = cfg.view.bbox; // a shared link's view: the map opens on it
  firstView(map, { focus: null, bounds: shared && query.state.inView ? shared : cfg.bounds }, shift);
  let timer = null;
  map.on("moveend", () => {
    if (!query.state.inView) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      query.state.bbox = viewBbox(map, shift);
      query.state.offset = 0;
      loadTable();
    }, MOVE_SETTLE_MS);
  });

  if (layer.editable) {
    const [{ featureForm }, { progressEditor }] = await Promise.all([
      import("../edit/form.js"),
      import("../map/progress/edit.js"),
    ]);
    view.editor = progressEditor(view, featureForm, {
      // after a save or a delete: the features in view, the map's set, the table and its figures
      onChanged: (fid, line) => {
        status.show(line);
        drawn.refresh(true);
        return reload();
      },
    });
    state.editor = view.editor;
  }
  await Promise.all([loadTable(), loadMapRows().then(() => drawn.refresh())]);
  Object.assign(state, { layer: drawn, table, view, reload });
  return state;
}

boot("progress", progress);
