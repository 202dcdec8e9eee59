/*
 * The popup of a monitored feature: its live values (level, depth and trend, or "no data since";
 * thresholds, closure, nearest pump) above, the commander's actions (actions.js) below. One
 * popup per feature, made when first opened and filled again in place on every change, so a
 * reason being typed is kept.
 */
import { el } from "../../lib/dom.js";
import { fill, metres } from "../../lib/format.js";
import { archiveLink } from "../popup.js";
import { actionBlocks } from "./actions.js";
import {
  closureBadge,
  closureState,
  contactOf,
  depthText,
  key,
  layerTitle,
  levelChip,
  staleText,
  trendText,
} from "./look.js";

/**
 * ``popupFor(feature)``: the popup's node (for bindPopup); ``refresh(feature)``: fill it again if
 * it was made; ``popups``: them all, by "layer:fid".
 */
export function featurePopups(board) {
  const { cfg, text } = board;
  const popups = new Map(); // "layer:fid" -> {node, info, actions, title, closureId}

  function popupOf(feature) {
    const id = key(feature.layer, feature.fid);
    let popup = popups.get(id);
    if (!popup) {
      const info = el("div", { class: "geoapp-flood-info" });
      const actions = el("div", { class: "geoapp-flood-actions" });
      const title = el("h3", { text: feature.name });
      const node = el("div", { class: "geoapp-popup geoapp-flood-popup", "data-layer": feature.layer }, [
        el("div", { class: "geoapp-popup-layer", text: layerTitle(board, feature.layer) }),
        title,
        info,
        archiveLink(cfg.featurePage, feature.layer, feature.fid, text.archive),
        actions,
      ]);
      popup = { node, info, actions, title, closureId: undefined };
      popups.set(id, popup);
    }
    fillPopup(feature);
    return popup;
  }

  function fillPopup(feature) {
    const popup = popups.get(key(feature.layer, feature.fid));
    popup.title.textContent = feature.name;
    const rows = [];
    const row = (label, value) => rows.push(el("tr", {}, [el("th", { text: label }), el("td", {}, [value])]));
    const textNode = (value) => document.createTextNode(value);
    row(text.level, levelChip(board, feature));
    if (feature.scenario) {
      row(text.pondsAt, textNode(`${feature.ponding_mmh} mm/h`));
    }
    if (feature.level === "stale") {
      row(text.observedAt, el("span", { class: "geoapp-stale-note", text: staleText(board, feature) }));
    } else {
      row(text.depth, textNode(`${depthText(feature.depth_cm)}  (${text.trend} ${trendText(feature.trend_cm_h)})`));
      row(text.observedAt, textNode(board.time(feature.observed_at)));
    }
    if (feature.thresholds) {
      const t = feature.thresholds;
      row(text.thresholds, textNode(`${t.attention} / ${t.warning} / ${t.danger} cm`));
    }
    const closure = closureState(board, feature);
    if (closure) {
      row(text.closure, closureBadge(closure));
      if (feature.closure) {
        const c = feature.closure;
        const who = fill(text.closedBy, { who: c.closed_by, time: board.time(c.closed_at), reason: c.reason || "" });
        row("", el("span", { class: "geoapp-muted", text: who }));
      }
    }
    const pump = feature.nearest_pump;
    if (pump) {
      const contact = contactOf(pump);
      row(text.nearestPump, textNode(`${pump.name} · ${metres(pump.distance_m)}${contact ? ` · ${contact}` : ""}`));
    }
    popup.info.replaceChildren(el("table", {}, rows));
    const closureId = feature.closure ? feature.closure.id : null;
    if (popup.closureId !== closureId) {
      popup.closureId = closureId; // rebuilt only when the closure changed: a reason being typed stays
      popup.actions.replaceChildren(...actionBlocks(board, feature));
    }
  }

  return {
    popups,
    popupFor: (feature) => popupOf(feature).node,
    refresh: (feature) => {
      if (popups.has(key(feature.layer, feature.fid))) fillPopup(feature);
    },
  };
}
