/*
 * How the board shows a feature's values, wherever it shows them (marker, tooltip, popup, list):
 * the colour and label of a level or a rain signal, the closure, the depth, the trend, "no data
 * since", the rain totals, the feature's symbol. Everything is built as DOM text (lib/dom.js).
 */
import { ApiError } from "../../lib/api.js";
import { el } from "../../lib/dom.js";
import { fill, localTime } from "../../lib/format.js";
import { symbolSvg } from "../symbols.js";

/** The board's id of a feature: "layer:fid". */
export function key(layer, fid) {
  return `${layer}:${fid}`;
}

/** The board's clock: a time in the district's zone, "MM-DD HH:MM:SS" or with ``timeOnly`` "HH:MM:SS". */
export function clockOf(cfg) {
  return (value, timeOnly = false) => localTime(value, { lang: cfg.lang, timeZone: cfg.timeZone, timeOnly });
}

/** "Not sent: <the server's message>". */
export function failure(text, err) {
  return fill(text.failed, { message: err instanceof ApiError ? err.message : String(err) });
}

/** A layer's title, or ``fallback`` (its id) when the config has no such layer. */
export function layerTitle(board, layerId, fallback = layerId) {
  const layer = board.layers[layerId];
  return layer ? layer.title : fallback;
}

/** Who to call: "name phone", or "" when there is neither. */
export function contactOf(item) {
  return [item.contact, item.contact_phone].filter(Boolean).join(" ");
}

/** What a level looks like: {label, color} from the rules (stale is grey, "no data"). */
export function levelLook(rules, level) {
  if (level === "stale" || !rules.levels[level]) return rules.stale;
  return rules.levels[level];
}

/** What a rain signal looks like: {label, color}; ``rules.noSignal`` when there is none. */
export function signalLook(rules, signal) {
  return signal ? rules.signals[signal] : rules.noSignal;
}

/** A chip: a look's label on its colour. */
export function chip(className, look) {
  const node = el("span", { class: className, text: look.label });
  node.style.background = look.color;
  return node;
}

/** A level chip: its colour and label, as text. */
export function levelChip(board, feature) {
  return chip(`geoapp-level geoapp-level-${feature.level}`, levelLook(board.rules, feature.level));
}

/** "No data since 12-02 09:05:00", or "no readings received" when none ever came. */
export function staleText(board, feature) {
  const { text } = board;
  if (!feature.observed_at) return text.neverData;
  return fill(text.noDataSince, { time: board.time(feature.observed_at) });
}

export function trendText(trend) {
  if (trend === null || trend === undefined) return "—";
  const arrow = trend > 0 ? "↑" : trend < 0 ? "↓" : "→";
  return `${arrow} ${Math.abs(trend).toFixed(1)} cm`;
}

export function depthText(depth) {
  return depth === null || depth === undefined ? "—" : `${Number(depth).toFixed(1).replace(/\.0$/, "")} cm`;
}

/** The closure of a feature as text: "Closed" / "Sealed", or the recommendation, or null. */
export function closureState(board, feature) {
  if (feature.closure) return { kind: "closed", text: board.text[`closed_${feature.closure.action}`] };
  if (feature.recommend) return { kind: "recommend", text: board.text[`recommend_${feature.recommend}`] };
  return null;
}

/** The small barrier symbol beside a closed feature in lists. */
export function barrier() {
  const svg = symbolSvg("none", "#ffffff", { size: 18, closed: true });
  svg.classList.add("geoapp-barrier");
  return svg;
}

/** A closure (closureState) as it reads in a popup or a row: the barrier when closed, then its text. */
export function closureBadge(closure, className) {
  const classes = `geoapp-closure-${closure.kind}`;
  return el("span", { class: className ? `${className} ${classes}` : classes }, [
    ...(closure.kind === "closed" ? [barrier()] : []),
    el("span", { text: closure.text }),
  ]);
}

/** The symbol a monitored layer declares (``style.icon``), a drop when the config has no such layer. */
export function iconOf(board, layerId) {
  const layer = board.layers[layerId];
  return layer ? layer.style.icon : "tint";
}

/** A monitored feature's symbol for lists and popups. */
export function featureSymbol(board, feature, size) {
  const look = levelLook(board.rules, feature.level);
  return symbolSvg(iconOf(board, feature.layer), look.color, {
    size,
    closed: Boolean(feature.closure),
    stale: feature.level === "stale",
  });
}

/** The rain totals of each window as a one-row table: 1 h, 3 h, … */
export function totalsTable(board, totals) {
  const windows = board.rules.windows;
  return el("table", { class: "geoapp-totals" }, [
    el(
      "tr",
      {},
      windows.map((h) => el("th", { text: fill(board.text.hoursShort, { hours: h }) })),
    ),
    el(
      "tr",
      {},
      windows.map((h) => el("td", { text: `${totals[String(h)] ?? 0}` })),
    ),
  ]);
}
