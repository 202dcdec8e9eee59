/*
 * A monitored feature's (or a rain gauge's) readings over the last hours, on its archive page:
 * a small uPlot chart (from npm, served from /static/vendor) with the time axis in the district's
 * time zone. Staff only: the server puts ``cfg.chart`` in the page for them alone.
 */
import uPlot from "../../vendor/uplot/dist/uPlot.esm.js";
import { Api } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { localTime } from "../lib/format.js";

const HOUR_MS = 3600 * 1000;

/** Draw the chart into ``box``; resolve to {count, points} (what tests read) once drawn. */
export async function readingsChart(box, chart, cfg) {
  if (!box) return null;
  const note = el("p", { class: "geoapp-readings-note geoapp-muted", role: "status" });
  box.replaceChildren(note);
  const api = new Api({ base: chart.api });
  const since = new Date(Date.now() - chart.hours * HOUR_MS).toISOString();
  let series;
  try {
    series = await api.get("/readings", {
      params: { layer: chart.layer, feature_id: chart.fid, kind: chart.kind, since },
    });
  } catch (err) {
    note.textContent = chart.text.failed;
    return { count: 0, failed: true };
  }
  const points = series.points || [];
  if (!points.length) {
    note.textContent = chart.text.empty;
    return { count: 0, points: [] };
  }
  const times = points.map(([at]) => new Date(at).getTime() / 1000);
  const values = points.map(([, value]) => value);
  const zone = cfg.timeZone || "Asia/Shanghai";
  const clock = (seconds) => localTime(new Date(seconds * 1000), { lang: cfg.lang, timeZone: zone, timeOnly: true });
  const width = Math.max(280, Math.floor(box.getBoundingClientRect().width) || 560);
  const options = {
    width,
    height: 220,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), zone),
    scales: { x: { time: true } },
    series: [
      { label: chart.text.time, value: (u, seconds) => (seconds === null ? "—" : clock(seconds)) },
      {
        label: chart.axis,
        stroke: chart.kind === "rain_mm" ? "#0277bd" : "#1565c0",
        width: 2,
        fill: "rgba(21, 101, 192, .10)",
        points: { show: points.length < 80, size: 5 },
        value: (u, v) => (v === null || v === undefined ? "—" : `${v} ${series.unit || ""}`.trim()),
      },
    ],
    axes: [
      { label: chart.text.time, values: (u, splits) => splits.map((s) => clock(s).slice(0, 5)), size: 48 },
      { label: chart.axis, size: 56 },
    ],
  };
  box.replaceChildren();
  const plot = new uPlot(options, [times, values], box);
  if (series.downsampled) box.appendChild(el("p", { class: "geoapp-muted", text: chart.text.downsampled }));
  return { count: series.count, points: points.length, plot };
}
