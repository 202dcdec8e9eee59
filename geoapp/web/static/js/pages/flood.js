/*
 * The flood commander's board (/flood): the monitored features coloured by level with their
 * layer's symbol, rain gauges, emergency resources and closures on the map; beside it the rain
 * signal, the situation list (most severe first, as the API sorts), the nearest resources, a rain
 * scenario and the times that say how fresh all of it is. Each of those is a module of its own
 * in static/js/map/flood/; this entry makes the ``board`` they share and wires them together.
 *
 * The live data is polled every few seconds and redrawn in place (map/flood/live.js), never by
 * reloading the page. What the user may do (close, seal, reopen, report a depth) is decided by
 * the server (cfg.mayClose, cfg.mayReport); the API checks again. Values reach the page as DOM
 * text only (lib/dom.js).
 */
import { Api } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { baseControls, contextLayers, firstView } from "../map/base.js";
import { layerDef } from "../map/layers.js";
import { makeShift } from "../map/shift.js";
import { statusLine } from "../map/status.js";
import { closureList } from "../map/flood/closures.js";
import { livePoll } from "../map/flood/live.js";
import { clockOf } from "../map/flood/look.js";
import { GaugeMarkers, WatchedMarkers, createPanes } from "../map/flood/markers.js";
import { nearestResources } from "../map/flood/nearest.js";
import { featurePopups } from "../map/flood/popup.js";
import { rainBar } from "../map/flood/rain.js";
import { resourceLayer } from "../map/flood/resources.js";
import { scenarioControl, shownFeatures } from "../map/flood/scenario.js";
import { situationList } from "../map/flood/situation.js";

async function flood(map, groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  const text = cfg.text;
  const rules = cfg.rules;
  baseControls(map, text);
  const status = statusLine(map);
  contextLayers(map, cfg.context, shift);
  createPanes(map);

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

  // what the board's parts share; below, what they call on one another (popupFor, onSelect …)
  const board = {
    map,
    cfg,
    rules,
    text,
    shift,
    state,
    layers: Object.fromEntries(cfg.layers.map((c) => [c.id, layerDef(c)])),
    api: new Api({ base: cfg.api, csrf: cfg.csrf }),
    time: clockOf(cfg),
    status: (line) => status.show(line),
    // clear of the zoom column on the left and the layer button on the right (a phone has no room to spare)
    popupOptions: {
      maxWidth: Math.min(340, window.innerWidth - 110),
      autoPanPaddingTopLeft: L.point(52, 12),
      autoPanPaddingBottomRight: L.point(60, 24),
    },
  };

  // the folium group of a layer (so the layer control switches it), or the map when it has none
  const groupOf = (id) => groups[id] || map;
  const popups = featurePopups(board);
  board.popupFor = popups.popupFor;
  board.refreshPopup = popups.refresh;
  // each monitored layer has its own group in the layer control: a feature goes into its layer's
  const watched = Object.fromEntries(rules.monitored.map((id) => [id, new WatchedMarkers(board, groupOf(id))]));
  board.open = (layer, fid) => watched[layer] && watched[layer].open(layer, fid);
  const gauges = new GaugeMarkers(board, groupOf(rules.gauges));
  board.onSelect = nearestResources(board).nearestTo; // a feature picked: what is nearest to it
  const resources = resourceLayer(board, groupOf(rules.resources.layer));
  board.loadResources = resources.load;
  const live = livePoll(board);
  board.pollNow = live.pollNow;
  const rain = rainBar(board);
  const situation = situationList(board);
  const closures = closureList(board);
  scenarioControl(board);

  board.render = () => {
    const features = shownFeatures(state);
    state.shown = features;
    rules.monitored.forEach((id) => watched[id].update(features.filter((f) => f.layer === id)));
    if (state.live) gauges.update(state.live.gauges);
    rain();
    situation(features);
    closures();
    live.showTimes();
  };

  firstView(map, cfg, shift);
  await live.pollOnce();
  live.schedule();
  resources.load();
  state.pollNow = live.pollNow;
  state.watched = watched;
  state.gauges = gauges;
  state.popups = popups.popups;
  return state;
}

boot("flood", flood);
