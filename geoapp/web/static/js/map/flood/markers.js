/*
 * The board's markers: monitored features drawn by level with their layer's symbol, and rain
 * gauges by signal. Markers are made once and changed in place as the live data changes (a new
 * icon when the look changes, a new pane when a feature turns dangerous or is closed: those sit
 * in a pane of their own above everything else and are never clustered). Every value is text.
 */
import { el } from "../../lib/dom.js";
import { fill } from "../../lib/format.js";
import { archiveLink } from "../popup.js";
import { symbolIcon } from "../symbols.js";
import {
  chip,
  closureState,
  depthText,
  iconOf,
  key,
  layerTitle,
  levelLook,
  signalLook,
  staleText,
  totalsTable,
} from "./look.js";

export const WATCH_PANE = "geoapp-watch";
export const ALERT_PANE = "geoapp-alert";
export const RESOURCE_PANE = "geoapp-resources";

/** Where a marker's tooltip sits: above it. */
export const TOOLTIP = { direction: "top", offset: [0, -8] };

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

/**
 * One monitored layer's markers, by "layer:fid". ``board``: {map, rules, layers, text, time,
 * shift, popupOptions, popupFor(feature), refreshPopup(feature), onSelect(feature)}.
 */
export class WatchedMarkers {
  constructor(board, group) {
    this.board = board;
    this.group = group;
    this.items = new Map(); // key -> {marker, look, pane, feature}
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
      this.refresh(found);
      return;
    }
    const colour = levelLook(board.rules, feature.level).color;
    const classes = ["geoapp-watch", `geoapp-level-${feature.level}`];
    if (closed) classes.push("geoapp-closed");
    if (feature.level === "danger") classes.push("geoapp-danger");
    if (feature.recommend && !closed) classes.push("geoapp-recommend");
    const icon = symbolIcon(iconOf(board, feature.layer), colour, {
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
      this.refresh(found);
      return;
    }
    // a marker cannot change pane: make it again there, with its popup open if it was
    const wasOpen = found ? found.marker.isPopupOpen() : false;
    if (found) this.group.removeLayer(found.marker);
    const marker = L.marker([lat, lng], { icon, pane, keyboard: true, riseOnHover: true });
    const item = { marker, look, pane, feature };
    marker.bindTooltip(() => this.tooltip(item.feature), TOOLTIP);
    marker.bindPopup(() => board.popupFor(item.feature), board.popupOptions);
    marker.on("click", () => board.onSelect(item.feature));
    this.items.set(id, item);
    marker.addTo(this.group);
    if (wasOpen) marker.openPopup();
  }

  /** A marker kept as it is: its tooltip and (if made) popup follow its feature's new values. */
  refresh(found) {
    found.marker.setTooltipContent(this.tooltip(found.feature));
    this.board.refreshPopup(found.feature);
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
      const look = signalLook(board.rules, gauge.signal);
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
        marker.bindTooltip(() => this.tooltip(item.gauge), TOOLTIP);
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
    const { rules, text } = board;
    return el("div", { class: "geoapp-popup geoapp-flood-popup" }, [
      el("div", { class: "geoapp-popup-layer", text: layerTitle(board, rules.gauges, "") }),
      el("h3", { text: gauge.name }),
      chip("geoapp-level", signalLook(rules, gauge.signal)),
      totalsTable(board, gauge.totals),
      el("p", { class: "geoapp-muted", text: `${text.observedAt}: ${board.time(gauge.latest_at)}` }),
      archiveLink(board.cfg.featurePage, rules.gauges, gauge.fid, text.archive),
    ]);
  }
}
