/*
 * The flood board's map: monitored features drawn by level with their layer's symbol, rain
 * gauges by signal, emergency resources by kind and state, and the lines to the nearest
 * resources. Markers are made once and changed in place as the live data changes (a new icon
 * when the look changes, a new pane when a feature turns dangerous or is closed: those sit in a
 * pane of their own above everything else and are never clustered). Every value is text.
 */
import { el } from "../lib/dom.js";
import { fill, localTime, metres } from "../lib/format.js";
import { symbolIcon, symbolSvg } from "./symbols.js";

export const WATCH_PANE = "geoapp-watch";
export const ALERT_PANE = "geoapp-alert";
const RESOURCE_PANE = "geoapp-resources";

/** The resource kinds' symbols (the layer declares one icon; the board tells the kinds apart). */
export const KIND_SYMBOLS = { pump_truck: "truck", pump_station: "pump", depot: "box", duty_post: "flag", squad: "people" };

// a phone shows the whole district on a small screen: smaller symbols
const SMALL = () => window.matchMedia("(max-width: 760px)").matches;

/** A monitored feature's symbol size: large when it needs action, small when nobody knows (stale). */
function symbolSizeOf(level, alert) {
  const base = alert ? 32 : level === "stale" ? 16 : 24;
  return SMALL() ? Math.round(base * 0.8) : base;
}

export function createPanes(map) {
  // below the tooltips (650) and popups (700), above the ordinary markers (600)
  [
    [RESOURCE_PANE, 605],
    [WATCH_PANE, 615],
    [ALERT_PANE, 640],
  ].forEach(([name, z]) => (map.createPane(name).style.zIndex = String(z)));
}

export function key(layer, fid) {
  return `${layer}:${fid}`;
}

/** What a level looks like: {label, color} from the rules (stale is grey, "no data"). */
export function levelLook(rules, level) {
  if (level === "stale" || !rules.levels[level]) return rules.stale;
  return rules.levels[level];
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

/** A level chip: its colour and label, as text. */
export function levelChip(board, feature) {
  const look = levelLook(board.rules, feature.level);
  const chip = el("span", { class: `geoapp-level geoapp-level-${feature.level}`, text: look.label });
  chip.style.background = look.color;
  return chip;
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

/** A monitored feature's symbol for lists and popups. */
export function featureSymbol(board, feature, size) {
  const layer = board.layers[feature.layer];
  const look = levelLook(board.rules, feature.level);
  return symbolSvg(layer ? layer.style.icon : "tint", look.color, {
    size,
    closed: Boolean(feature.closure),
    stale: feature.level === "stale",
  });
}

/**
 * The monitored features' markers, by "layer:fid". ``board``: {map, rules, layers, text, time,
 * popupFor(feature), onSelect(feature)} from the page.
 */
export class WatchedMarkers {
  constructor(board, group) {
    this.board = board;
    this.group = group;
    this.items = new Map(); // key -> {marker, look, feature}
  }

  /** Draw ``features`` (the live payload's, or a scenario's merged on them); remove those gone. */
  update(features) {
    const seen = new Set();
    features.forEach((feature) => {
      const id = key(feature.layer, feature.fid);
      seen.add(id);
      this.draw(id, feature);
    });
    [...this.items.keys()].filter((id) => !seen.has(id)).forEach((id) => this.remove(id));
  }

  draw(id, feature) {
    const { board } = this;
    const closed = Boolean(feature.closure);
    const alert = feature.level === "danger" || closed;
    const pane = alert ? ALERT_PANE : WATCH_PANE;
    const look = [feature.level, closed, feature.recommend || "", pane, feature.scenario ? 1 : 0].join("|");
    const found = this.items.get(id);
    const [lng, lat] = board.shift.toMap(feature.lon, feature.lat);
    if (found && found.look === look) {
      found.feature = feature;
      found.marker.setLatLng([lat, lng]);
      found.marker.setTooltipContent(this.tooltip(feature));
      board.refreshPopup(feature);
      return;
    }
    const layer = board.layers[feature.layer];
    const colour = levelLook(board.rules, feature.level).color;
    const classes = ["geoapp-watch", `geoapp-level-${feature.level}`];
    if (closed) classes.push("geoapp-closed");
    if (feature.level === "danger") classes.push("geoapp-danger");
    if (feature.recommend && !closed) classes.push("geoapp-recommend");
    const icon = symbolIcon(layer ? layer.style.icon : "tint", colour, {
      size: symbolSizeOf(feature.level, alert),
      closed,
      classes: classes.join(" "),
      data: {
        layer: feature.layer,
        fid: feature.fid,
        level: feature.level,
        closed: closed ? feature.closure.action : "",
        scenario: feature.scenario ? "1" : "",
      },
    });
    if (found && found.pane === pane) {
      found.marker.setIcon(icon);
      found.look = look;
      found.feature = feature;
      found.marker.setTooltipContent(this.tooltip(feature));
      board.refreshPopup(feature);
      return;
    }
    // a marker cannot change pane: make it again there, with its popup open if it was
    const wasOpen = found ? found.marker.isPopupOpen() : false;
    if (found) this.group.removeLayer(found.marker);
    const marker = L.marker([lat, lng], { icon, pane, keyboard: true, riseOnHover: true });
    const item = { marker, look, pane, feature };
    marker.bindTooltip(() => this.tooltip(item.feature), { direction: "top", offset: [0, -8] });
    marker.bindPopup(() => board.popupFor(item.feature), board.popupOptions);
    marker.on("click", () => board.onSelect(item.feature));
    this.items.set(id, item);
    marker.addTo(this.group);
    if (wasOpen) marker.openPopup();
  }

  tooltip(feature) {
    const { board } = this;
    const look = levelLook(board.rules, feature.level);
    const parts = [el("strong", { text: feature.name }), el("span", { text: ` · ${look.label}` })];
    if (feature.depth_cm !== null && feature.depth_cm !== undefined && feature.level !== "stale") {
      parts.push(el("span", { text: ` · ${depthText(feature.depth_cm)}` }));
    }
    if (feature.level === "stale") parts.push(el("div", { class: "geoapp-stale-note", text: staleText(board, feature) }));
    const state = closureState(board, feature);
    if (state) parts.push(el("div", { class: `geoapp-closure-${state.kind}`, text: state.text }));
    return el("div", { class: "geoapp-watch-tooltip" }, parts);
  }

  remove(id) {
    const found = this.items.get(id);
    if (found) this.group.removeLayer(found.marker);
    this.items.delete(id);
  }

  /** Fly to a feature and open its popup. */
  open(layer, fid) {
    const found = this.items.get(key(layer, fid));
    if (!found) return false;
    const { map } = this.board;
    const target = found.marker.getLatLng();
    const zoom = Math.max(map.getZoom(), 16);
    const openIt = () => found.marker.openPopup();
    if (map.getCenter().distanceTo(target) < 1 && map.getZoom() === zoom) openIt();
    else {
      map.once("moveend", openIt);
      map.flyTo(target, zoom, { duration: 0.6 });
    }
    return true;
  }
}

/** The rain gauges: a diamond in the colour of the signal its totals amount to, totals in the popup. */
export class GaugeMarkers {
  constructor(board, group) {
    this.board = board;
    this.group = group;
    this.items = new Map();
  }

  update(gauges) {
    const { board } = this;
    gauges.forEach((gauge) => {
      const look = gauge.signal ? board.rules.signals[gauge.signal] : board.rules.noSignal;
      const signature = `${gauge.signal || ""}`;
      const [lng, lat] = board.shift.toMap(gauge.lon, gauge.lat);
      let item = this.items.get(gauge.fid);
      const icon = () =>
        symbolIcon("gauge", look.color, {
          size: 24,
          classes: "geoapp-gauge",
          data: { layer: board.rules.gauges, fid: gauge.fid, signal: gauge.signal || "none" },
        });
      if (!item) {
        const marker = L.marker([lat, lng], { icon: icon(), pane: RESOURCE_PANE });
        item = { marker, signature, gauge };
        marker.bindTooltip(() => this.tooltip(item.gauge), { direction: "top", offset: [0, -8] });
        marker.bindPopup(() => this.popup(item.gauge), board.popupOptions);
        marker.addTo(this.group);
        this.items.set(gauge.fid, item);
      } else if (item.signature !== signature) {
        item.marker.setIcon(icon());
        item.signature = signature;
      }
      item.gauge = gauge;
      if (item.marker.isPopupOpen()) item.marker.setPopupContent(this.popup(gauge));
    });
  }

  tooltip(gauge) {
    const hour = gauge.totals["1"];
    return el("div", {}, [
      el("strong", { text: gauge.name }),
      el("span", { text: ` · ${fill(this.board.text.hoursShort, { hours: 1 })} ${hour ?? 0} mm` }),
    ]);
  }

  popup(gauge) {
    const { board } = this;
    const look = gauge.signal ? board.rules.signals[gauge.signal] : board.rules.noSignal;
    const chip = el("span", { class: "geoapp-level", text: look.label });
    chip.style.background = look.color;
    const layer = board.layers[board.rules.gauges];
    return el("div", { class: "geoapp-popup geoapp-flood-popup" }, [
      el("div", { class: "geoapp-popup-layer", text: layer ? layer.title : "" }),
      el("h3", { text: gauge.name }),
      chip,
      totalsTable(board, gauge.totals),
      el("p", { class: "geoapp-muted", text: `${board.text.observedAt}: ${board.time(gauge.latest_at)}` }),
      archiveLink(board, board.rules.gauges, gauge.fid),
    ]);
  }
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

export function archiveLink(board, layerId, fid) {
  return el("a", {
    class: "geoapp-archive-link",
    href: `${board.cfg.featurePage}${encodeURIComponent(layerId)}/${encodeURIComponent(fid)}`,
    text: board.text.archive,
  });
}

/** The emergency resources, by kind (symbol) and state (colour), from the layer's own API. */
export function resourceItem(board, layer, feature, latlng, popupContent) {
  const props = feature.properties || {};
  const res = board.rules.resources;
  const colour = layer.colours[props[res.stateField]] || layer.style.color;
  const icon = symbolIcon(KIND_SYMBOLS[props[res.kindField]] || layer.style.icon, colour, {
    size: 22,
    classes: `geoapp-resource geoapp-resource-${props[res.stateField]}`,
    data: { layer: layer.id, fid: feature.id, kind: props[res.kindField], state: props[res.stateField] },
  });
  const marker = L.marker(latlng, { icon, pane: RESOURCE_PANE });
  const kindField = layer.fields[res.kindField];
  const stateField = layer.fields[res.stateField];
  const label = (field, value) => {
    const choice = field && field.values ? field.values.find((c) => c.value === value) : null;
    return choice ? choice.label : value;
  };
  marker.bindTooltip(
    el("div", {}, [
      el("strong", { text: props.name ?? `#${feature.id}` }),
      el("span", { text: ` · ${label(kindField, props[res.kindField])} · ${label(stateField, props[res.stateField])}` }),
    ]),
    { direction: "top", offset: [0, -8] },
  );
  marker.bindPopup(() => popupContent(), board.popupOptions);
  return marker;
}

// where each distance label sits by its resource: above, right, left (neighbours' labels do not overlap)
const LABEL_PLACES = [
  ["top", [0, -14]],
  ["right", [14, 0]],
  ["left", [-14, 0]],
];

/** Lines from a point to the nearest resources, each with its distance in metres. */
export class NearestLines {
  constructor(board) {
    this.board = board;
    this.group = L.featureGroup().addTo(board.map);
  }

  clear() {
    this.group.clearLayers();
  }

  draw(from, resources) {
    const { shift } = this.board;
    this.clear();
    const [flng, flat] = shift.toMap(from.lon, from.lat);
    const origin = L.latLng(flat, flng);
    L.circleMarker(origin, { radius: 7, color: "#0d2b45", weight: 3, fillColor: "#fff", fillOpacity: 1 }).addTo(
      this.group,
    );
    resources.forEach((resource, index) => {
      const [lng, lat] = shift.toMap(resource.lon, resource.lat);
      const target = L.latLng(lat, lng);
      L.polyline([origin, target], {
        color: "#0d2b45",
        weight: index === 0 ? 4 : 3,
        opacity: 0.85,
        dashArray: index === 0 ? null : "8 6",
        className: "geoapp-nearest-line",
        interactive: false,
      }).addTo(this.group);
      L.circleMarker(target, { radius: 14, color: "#0d2b45", weight: 3, fill: false, interactive: false }).addTo(
        this.group,
      );
      // at the resource's end of its line (three resources often stand close together: labels above each)
      const [direction, offset] = LABEL_PLACES[index % LABEL_PLACES.length];
      L.tooltip({ permanent: true, direction, offset, className: "geoapp-distance", interactive: false })
        .setLatLng(target)
        .setContent(el("span", { text: `${index + 1} · ${metres(resource.distance_m)}` }))
        .addTo(this.group);
    });
  }
}

export function clockOf(cfg) {
  return (value, timeOnly = false) => localTime(value, { lang: cfg.lang, timeZone: cfg.timeZone, timeOnly });
}
