/*
 * The flood commander's board (/flood): the monitored features coloured by level with their
 * layer's symbol, rain gauges, emergency resources and closures on the map; beside it the rain
 * signal, the situation list (most severe first, as the API sorts), the nearest resources, a rain
 * scenario and the times that say how fresh all of it is.
 *
 * The live data is polled every few seconds with If-None-Match (a 304 keeps what is drawn) and
 * redrawn in place, never by reloading the page. What the user may do (close, seal, reopen,
 * report a depth) is decided by the server (cfg.mayClose, cfg.mayReport); the API checks again.
 * Values reach the page as DOM text only (lib/dom.js).
 */
import { Api, ApiError, featurePath, isAbort } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { button, el, say } from "../lib/dom.js";
import { fill, isoNow, metres } from "../lib/format.js";
import { baseControls, contextLayers, firstView } from "../map/base.js";
import {
  GaugeMarkers,
  KIND_SYMBOLS,
  NearestLines,
  WatchedMarkers,
  archiveLink,
  barrier,
  clockOf,
  closureState,
  createPanes,
  depthText,
  featureSymbol,
  key,
  levelChip,
  levelLook,
  resourceItem,
  staleText,
  totalsTable,
  trendText,
} from "../map/flood.js";
import { layerDef } from "../map/layers.js";
import { popupContent } from "../map/popup.js";
import { makeShift } from "../map/shift.js";
import { statusLine } from "../map/status.js";
import { symbolSvg } from "../map/symbols.js";

const RESOURCE_LIMIT = 1000;

function failure(text, err) {
  return fill(text.failed, { message: err instanceof ApiError ? err.message : String(err) });
}

/** The board's side panel and bar, found in templates/flood.html. */
function panelNodes() {
  const q = (selector) => document.querySelector(selector);
  return {
    signal: q(".geoapp-board-signal"),
    rain: q(".geoapp-board-rain"),
    updated: q(".geoapp-updated-at"),
    refreshed: q(".geoapp-refreshed-at"),
    pollError: q(".geoapp-poll-error"),
    counts: q(".geoapp-board-counts"),
    list: q(".geoapp-situation-list"),
    situationTitle: q(".geoapp-situation h2"),
    closures: q(".geoapp-closure-list"),
    nearest: q(".geoapp-nearest-list"),
    nearestKind: q(".geoapp-nearest-kind"),
    nearestOrigin: q(".geoapp-nearest-origin"),
    scenarioForm: q(".geoapp-scenario-form"),
    scenarioMessage: q(".geoapp-scenario-message"),
    banner: q(".geoapp-scenario-banner"),
    bannerWhat: q(".geoapp-scenario-what"),
    backToLive: q(".geoapp-back-to-live"),
  };
}

async function flood(map, groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  const text = cfg.text;
  const rules = cfg.rules;
  baseControls(map, text);
  const status = statusLine(map);
  contextLayers(map, cfg.context, shift);
  createPanes(map);
  const nodes = panelNodes();
  const api = new Api({ base: cfg.api, csrf: cfg.csrf });
  const time = clockOf(cfg);
  const layers = Object.fromEntries(cfg.layers.map((c) => [c.id, layerDef(c)]));
  const popups = new Map(); // "layer:fid" -> {node, info, actions, closureId}

  // what tests (and the benchmark) read: window.geoapp.state
  const state = {
    map,
    cfg,
    live: null,
    etag: null,
    polls: 0,
    changes: 0,
    failures: 0,
    failedAt: null,
    refreshedAt: null,
    scenario: null,
    nearest: null,
    resources: null,
    shown: [],
  };

  const board = {
    map,
    cfg,
    rules,
    layers,
    text,
    shift,
    time: (value) => time(value),
    // clear of the zoom column on the left and the layer button on the right (a phone has no room to spare)
    popupOptions: {
      maxWidth: Math.min(340, window.innerWidth - 110),
      autoPanPaddingTopLeft: L.point(52, 12),
      autoPanPaddingBottomRight: L.point(60, 24),
    },
    popupFor: (feature) => popupOf(feature).node,
    refreshPopup: (feature) => {
      if (popups.has(key(feature.layer, feature.fid))) fillPopup(feature);
    },
    onSelect: (feature) => nearestFrom({ layer: feature.layer, feature_id: feature.fid }, feature),
  };

  // each monitored layer has its own group in the layer control: a feature goes into its layer's
  const watchedByLayer = Object.fromEntries(
    rules.monitored.map((id) => [id, new WatchedMarkers(board, groupFor(groups, id, map))]),
  );
  const gauges = new GaugeMarkers(board, groupFor(groups, rules.gauges, map));
  const nearestLines = new NearestLines(board);

  // -- popups of monitored features: live values above, the commander's actions below --------------

  function popupOf(feature) {
    const id = key(feature.layer, feature.fid);
    let popup = popups.get(id);
    if (!popup) {
      const layer = layers[feature.layer];
      const info = el("div", { class: "geoapp-flood-info" });
      const actions = el("div", { class: "geoapp-flood-actions" });
      const title = el("h3", { text: feature.name });
      const node = el("div", { class: "geoapp-popup geoapp-flood-popup", "data-layer": feature.layer }, [
        el("div", { class: "geoapp-popup-layer", text: layer ? layer.title : feature.layer }),
        title,
        info,
        archiveLink(board, feature.layer, feature.fid),
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
      row(text.observedAt, textNode(time(feature.observed_at)));
    }
    if (feature.thresholds) {
      const t = feature.thresholds;
      row(text.thresholds, textNode(`${t.attention} / ${t.warning} / ${t.danger} cm`));
    }
    const closure = closureState(board, feature);
    if (closure) {
      const cell = el("span", { class: `geoapp-closure-${closure.kind}` }, [
        ...(closure.kind === "closed" ? [barrier()] : []),
        el("span", { text: closure.text }),
      ]);
      row(text.closure, cell);
      if (feature.closure) {
        const c = feature.closure;
        const who = fill(text.closedBy, { who: c.closed_by, time: time(c.closed_at), reason: c.reason || "" });
        row("", el("span", { class: "geoapp-muted", text: who }));
      }
    }
    const pump = feature.nearest_pump;
    if (pump) {
      const contact = [pump.contact, pump.contact_phone].filter(Boolean).join(" ");
      row(text.nearestPump, textNode(`${pump.name} · ${metres(pump.distance_m)}${contact ? ` · ${contact}` : ""}`));
    }
    popup.info.replaceChildren(el("table", {}, rows));
    const closureId = feature.closure ? feature.closure.id : null;
    if (popup.closureId !== closureId) {
      popup.closureId = closureId; // rebuilt only when the closure changed: a reason being typed stays
      popup.actions.replaceChildren(...actionBlocks(feature));
    }
  }

  /** The commander's blocks: close/seal or reopen (closable layers), and a manual depth report. */
  function actionBlocks(feature) {
    const blocks = [];
    const rule = rules.closures[feature.layer];
    if (cfg.mayClose && rule) {
      const message = el("p", { class: "geoapp-edit-message", role: "status" });
      const reason = el("input", {
        type: "text",
        name: "reason",
        maxlength: "500",
        class: "geoapp-reason",
        placeholder: text.reason,
        "aria-label": text.reason,
      });
      const closure = feature.closure;
      const label = closure ? text.reopen : text[`action_${rule.action}`];
      const go = button(
        label,
        async () => {
          const why = reason.value.trim();
          if (!closure && !why) {
            say(message, text.reasonRequired, "error");
            reason.focus();
            return;
          }
          go.disabled = true;
          say(message, text.sending, "busy");
          try {
            if (closure) {
              const path = `/flood/closures/${encodeURIComponent(closure.id)}/reopen`;
              await api.post(path, why ? { reason: why } : {});
            } else {
              await api.post("/flood/closures", { layer: feature.layer, feature_id: feature.fid, reason: why });
            }
          } catch (err) {
            go.disabled = false;
            say(message, failure(text, err), "error");
            return;
          }
          say(message, text.done, "ok");
          pollNow();
        },
        { class: closure ? "geoapp-reopen" : "geoapp-close", "data-action": closure ? "reopen" : rule.action },
      );
      blocks.push(el("div", { class: "geoapp-edit geoapp-closure-form" }, [reason, go, message]));
    }
    if (cfg.mayReport) {
      const message = el("p", { class: "geoapp-edit-message", role: "status" });
      const value = el("input", {
        type: "number",
        name: "depth_cm",
        min: "0",
        max: "500",
        step: "0.5",
        class: "geoapp-report-value",
        "aria-label": text.reportDepth,
      });
      const send = button(
        text.send,
        async () => {
          const number = Number(value.value);
          if (value.value === "" || !Number.isFinite(number)) {
            value.focus();
            return;
          }
          send.disabled = true;
          say(message, text.sending, "busy");
          try {
            await api.post("/readings", {
              layer: feature.layer,
              feature_id: feature.fid,
              kind: "depth_cm",
              value: number,
              observed_at: isoNow(),
            });
          } catch (err) {
            send.disabled = false;
            say(message, failure(text, err), "error");
            return;
          }
          send.disabled = false;
          value.value = "";
          say(message, text.sent, "ok");
          pollNow();
        },
        { class: "geoapp-report-send" },
      );
      blocks.push(
        el("div", { class: "geoapp-edit geoapp-report-form" }, [
          el("label", {}, [el("span", { text: `${text.reportDepth} ` }), value]),
          send,
          message,
        ]),
      );
    }
    return blocks;
  }

  // -- the panel ----------------------------------------------------------------------------------

  function shownFeatures() {
    const live = state.live ? state.live.features : [];
    if (!state.scenario) return live;
    const byKey = new Map(live.map((f) => [key(f.layer, f.fid), f]));
    // the scenario's order (most severe first); live values (closures, pumps) kept beside its level
    return state.scenario.features.map((s) => ({
      ...(byKey.get(key(s.layer, s.fid)) || { closure: null, nearest_pump: null, thresholds: null }),
      ...s,
      depth_cm: null,
      trend_cm_h: null,
      observed_at: null,
      recommend: byKey.get(key(s.layer, s.fid))?.closure ? null : s.recommend,
      scenario: true,
    }));
  }

  function render() {
    const features = shownFeatures();
    state.shown = features;
    rules.monitored.forEach((id) => watchedByLayer[id].update(features.filter((f) => f.layer === id)));
    if (state.live) gauges.update(state.live.gauges);
    renderRain();
    renderCounts(features);
    renderList(features);
    renderClosures();
    renderTimes();
  }

  function renderRain() {
    const live = state.live;
    if (!live) return;
    const scenario = state.scenario;
    const signalId = scenario ? scenario.signal : live.signal.id;
    const look = signalId ? rules.signals[signalId] : rules.noSignal;
    const chip = el("span", { class: "geoapp-signal-chip", text: look.label });
    chip.style.background = look.color;
    nodes.signal.dataset.signal = signalId || "none";
    const tag = scenario ? [el("span", { class: "geoapp-scenario-tag", text: text.scenarioTag })] : [];
    nodes.signal.replaceChildren(el("span", { class: "geoapp-bar-label", text: text.signal }), ...tag, chip);
    let totals = null;
    let where = "";
    if (scenario) {
      totals = scenario.scenario.totals;
      where = null;
    } else {
      const gauge =
        live.gauges.find((g) => g.fid === live.signal.gauge) ||
        [...live.gauges].sort((a, b) => (b.totals["1"] || 0) - (a.totals["1"] || 0))[0];
      if (gauge) {
        totals = gauge.totals;
        where = gauge.name;
      }
    }
    if (!totals) {
      nodes.rain.replaceChildren();
      return;
    }
    nodes.rain.replaceChildren(
      ...(scenario ? [el("span", { class: "geoapp-scenario-tag", text: text.scenarioTag })] : []),
      el("span", {
        class: "geoapp-bar-label",
        text: where === null ? text.scenarioRain : fill(text.rainAt, { gauge: where }),
      }),
      totalsTable(board, totals),
      el("span", { class: "geoapp-muted", text: "mm" }),
    );
  }

  function renderCounts(features) {
    const order = ["danger", "warning", "stale", "attention", "normal"];
    const counts = Object.fromEntries(order.map((level) => [level, 0]));
    features.forEach((f) => (counts[f.level] = (counts[f.level] || 0) + 1));
    const chips = order.map((level) => {
      const look = levelLook(rules, level);
      const chip = el("span", { class: `geoapp-count geoapp-count-${level}`, "data-level": level }, [
        el("i", { class: "geoapp-count-swatch" }),
        el("span", { text: look.label }),
        el("strong", { text: String(counts[level]) }),
      ]);
      chip.firstChild.style.background = look.color;
      return chip;
    });
    nodes.counts.replaceChildren(...chips);
  }

  function renderList(features) {
    const scroll = nodes.list.scrollTop;
    const rows = features.map((f) => {
      const look = levelLook(rules, f.level);
      const layer = layers[f.layer];
      const closure = closureState(board, f);
      const second = [el("span", { class: "geoapp-row-layer", text: layer ? layer.title : f.layer })];
      if (closure) {
        second.push(
          el("span", { class: `geoapp-row-closure geoapp-closure-${closure.kind}` }, [
            ...(closure.kind === "closed" ? [barrier()] : []),
            el("span", { text: closure.text }),
          ]),
        );
      }
      if (f.nearest_pump) {
        second.push(
          el("span", {
            class: "geoapp-row-pump",
            text: `${text.nearestPump}: ${f.nearest_pump.name} ${metres(f.nearest_pump.distance_m)}`,
          }),
        );
      }
      const measure =
        f.level === "stale"
          ? [el("span", { class: "geoapp-row-stale", text: staleText(board, f) })]
          : f.scenario
            ? [el("span", { class: "geoapp-row-depth", text: `${text.pondsAt} ${f.ponding_mmh} mm/h` })]
            : [
                el("span", { class: "geoapp-row-depth", text: depthText(f.depth_cm) }),
                el("span", {
                  class: `geoapp-row-trend ${f.trend_cm_h > 0 ? "geoapp-rising" : ""}`,
                  title: text.trend,
                  text: trendText(f.trend_cm_h),
                }),
              ];
      const item = el(
        "li",
        {
          class: `geoapp-row geoapp-row-${f.level}${closure ? ` geoapp-row-${closure.kind}` : ""}`,
          tabindex: "0",
          "data-layer": f.layer,
          "data-fid": String(f.fid),
          "data-level": f.level,
        },
        [
          el("span", { class: "geoapp-row-symbol" }, [featureSymbol(board, f, 22)]),
          el("span", { class: "geoapp-row-main" }, [
            el("span", { class: "geoapp-row-first" }, [
              el("span", { class: "geoapp-row-name", text: f.name }),
              el("span", { class: "geoapp-row-measure" }, measure),
            ]),
            el("span", { class: "geoapp-row-second" }, second),
          ]),
          levelChip(board, f),
        ],
      );
      item.style.borderLeftColor = look.color;
      const go = () => {
        if (watchedByLayer[f.layer]) watchedByLayer[f.layer].open(f.layer, f.fid);
        board.onSelect(f); // and what is nearest to it
      };
      item.addEventListener("click", go);
      item.addEventListener("keydown", (e) => e.key === "Enter" && go());
      return item;
    });
    nodes.list.replaceChildren(...rows);
    nodes.list.scrollTop = scroll;
  }

  function renderClosures() {
    const closures = state.live ? state.live.closures : [];
    if (!closures.length) {
      nodes.closures.replaceChildren(el("li", { class: "geoapp-muted", text: text.noClosures }));
      return;
    }
    nodes.closures.replaceChildren(
      ...closures.map((c) => {
        const what = `${text[`closed_${c.action}`]} · ${time(c.closed_at)} · ${c.reason || ""}`;
        const attrs = { class: "geoapp-closure-item", tabindex: "0", "data-layer": c.layer, "data-fid": String(c.fid) };
        const item = el("li", attrs, [
          barrier(),
          el("span", { class: "geoapp-row-name", text: c.name }),
          el("span", { class: "geoapp-muted", text: what }),
        ]);
        item.addEventListener("click", () => watchedByLayer[c.layer] && watchedByLayer[c.layer].open(c.layer, c.fid));
        return item;
      }),
    );
  }

  function renderTimes() {
    const live = state.live;
    nodes.updated.textContent = live && live.updated_at ? time(live.updated_at) : text.noReadings;
    nodes.refreshed.textContent = state.refreshedAt ? time(state.refreshedAt) : "—";
    if (state.failedAt) {
      nodes.pollError.hidden = false;
      nodes.pollError.textContent = fill(text.pollFailed, { time: time(state.failedAt, true) });
    } else {
      nodes.pollError.hidden = true;
      nodes.pollError.textContent = "";
    }
    document.body.classList.toggle("geoapp-board-failing", Boolean(state.failedAt));
  }

  // -- polling ------------------------------------------------------------------------------------

  let timer = null;
  async function pollOnce() {
    state.polls += 1;
    let answer;
    try {
      answer = await api.poll("/flood/live", { etag: state.etag, key: "live" });
    } catch (err) {
      if (isAbort(err)) return false;
      state.failures += 1;
      state.failedAt = new Date();
      renderTimes();
      return false;
    }
    state.refreshedAt = new Date();
    state.failedAt = null;
    if (answer.changed) {
      const first = state.live === null;
      state.etag = answer.etag;
      state.live = answer.payload;
      state.changes += 1;
      render();
      if (!first) loadResources(); // a resource sent or back changes the nearest pumps too
    } else {
      renderTimes();
    }
    return true;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      await pollOnce();
      schedule();
    }, cfg.pollMs);
  }

  function pollNow() {
    clearTimeout(timer);
    pollOnce().then(schedule);
  }

  // -- emergency resources ---------------------------------------------------------------------

  const resourceLayer = layers[rules.resources.layer];
  const resourceGroup = L.featureGroup().addTo(groupFor(groups, rules.resources.layer, map));
  async function loadResources() {
    if (!resourceLayer) return;
    let payload;
    try {
      payload = await api.get(featurePath(resourceLayer.id), {
        params: { limit: RESOURCE_LIMIT },
        accept: "application/geo+json",
        key: "resources",
      });
    } catch (err) {
      if (!isAbort(err)) status.show(`${resourceLayer.title}: ${text.loadFailed}`);
      return;
    }
    resourceGroup.clearLayers();
    L.geoJSON(shift.geojson(payload), {
      pointToLayer: (feature, latlng) =>
        resourceItem(board, resourceLayer, feature, latlng, () =>
          popupContent(resourceLayer, feature, { text, lang: cfg.lang, featurePage: cfg.featurePage }),
        ),
    })
      .getLayers()
      .forEach((item) => resourceGroup.addLayer(item));
    state.resources = payload.numberReturned;
  }

  // -- nearest resources ------------------------------------------------------------------------

  const kindField = resourceLayer ? resourceLayer.fields[rules.resources.kindField] : null;
  if (kindField && kindField.values) {
    nodes.nearestKind.replaceChildren(
      el("option", { value: "", text: text.anyKind }),
      ...kindField.values.map((c) => el("option", { value: c.value, text: c.label })),
    );
  }
  let lastOrigin = null;
  nodes.nearestKind.addEventListener("change", () => lastOrigin && nearestFrom(...lastOrigin));

  async function nearestFrom(origin, feature) {
    lastOrigin = [origin, feature];
    const params = { ...origin, k: 3 };
    if (nodes.nearestKind.value) params.kind = nodes.nearestKind.value;
    let payload;
    try {
      payload = await api.get("/flood/nearest", { params, key: "nearest" });
    } catch (err) {
      if (isAbort(err)) return;
      nodes.nearest.replaceChildren(el("li", { class: "geoapp-error-text", text: failure(text, err) }));
      return;
    }
    state.nearest = payload;
    nearestLines.draw(payload.from, payload.resources);
    const { lon, lat } = payload.from;
    nodes.nearestOrigin.textContent = feature ? feature.name : `${text.fromHere} (${lon.toFixed(5)}, ${lat.toFixed(5)})`;
    if (!payload.resources.length) {
      nodes.nearest.replaceChildren(el("li", { class: "geoapp-muted", text: text.noneAvailable }));
      return;
    }
    nodes.nearest.replaceChildren(
      ...payload.resources.map((r, index) => {
        const label = kindField && kindField.values ? kindField.values.find((c) => c.value === r.kind) : null;
        const contact = [r.contact, r.contact_phone].filter(Boolean).join(" ");
        const colour = resourceLayer.colours[r.state] || resourceLayer.style.color;
        return el("li", { class: "geoapp-nearest-item", "data-fid": String(r.fid) }, [
          el("span", { class: "geoapp-nearest-rank", text: String(index + 1) }),
          symbolSvg(KIND_SYMBOLS[r.kind] || "truck", colour, { size: 20 }),
          el("span", { class: "geoapp-row-main" }, [
            el("span", { class: "geoapp-row-first" }, [
              el("span", { class: "geoapp-row-name", text: r.name }),
              el("strong", { class: "geoapp-nearest-distance", text: metres(r.distance_m) }),
            ]),
            el("span", { class: "geoapp-row-second" }, [
              el("span", { text: label ? label.label : r.kind }),
              ...(r.capacity !== undefined && r.capacity !== null ? [el("span", { text: `${r.capacity}` })] : []),
              ...(contact ? [el("span", { class: "geoapp-nearest-contact", text: `${text.contact}: ${contact}` })] : []),
            ]),
          ]),
        ]);
      }),
    );
  }

  map.on("contextmenu", (e) => {
    const [lon, lat] = shift.toData(e.latlng.lng, e.latlng.lat);
    nearestFrom({ lon: lon.toFixed(6), lat: lat.toFixed(6) }, null);
  });
  document.querySelector(".geoapp-nearest-clear").addEventListener("click", () => {
    lastOrigin = null;
    state.nearest = null;
    nearestLines.clear();
    nodes.nearestOrigin.textContent = "";
    nodes.nearest.replaceChildren(el("li", { class: "geoapp-muted", text: text.nearestHint }));
  });
  nodes.nearest.replaceChildren(el("li", { class: "geoapp-muted", text: text.nearestHint }));

  // -- the rain scenario ------------------------------------------------------------------------

  nodes.scenarioForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(nodes.scenarioForm);
    const params = { rain_mm_h: form.get("rain_mm_h"), hours: form.get("hours") };
    say(nodes.scenarioMessage, text.sending, "busy");
    let payload;
    try {
      payload = await api.get("/flood/scenario", { params, key: "scenario" });
    } catch (err) {
      if (isAbort(err)) return;
      say(nodes.scenarioMessage, fill(text.scenarioFailed, { message: err.message }), "error");
      return;
    }
    say(nodes.scenarioMessage, "", "");
    state.scenario = payload;
    nodes.bannerWhat.textContent = fill(text.scenarioWhat, {
      rate: payload.scenario.rain_mm_h,
      hours: payload.scenario.hours,
    });
    nodes.banner.hidden = false;
    document.body.classList.add("geoapp-scenario-on");
    render();
  });
  nodes.backToLive.addEventListener("click", () => {
    state.scenario = null;
    nodes.banner.hidden = true;
    document.body.classList.remove("geoapp-scenario-on");
    render();
  });

  firstView(map, cfg, shift);
  await pollOnce();
  schedule();
  loadResources();
  state.pollNow = pollNow;
  state.watched = watchedByLayer;
  state.gauges = gauges;
  state.popups = popups;
  return state;
}

/** The folium group of a layer (so the layer control switches it), or the map when it has none. */
function groupFor(groups, id, map) {
  return groups[id] || map;
}

boot("flood", flood);
