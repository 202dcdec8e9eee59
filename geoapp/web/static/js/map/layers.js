/*
 * The operational layers, fetched from the query API for the current view. The page carries no
 * feature data of its own: each layer asks for the bbox in view (a little wider) whenever the
 * view moves, and a newer view's request aborts the older one (see lib/api.js).
 */
import { featurePath, isAbort } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { titleOf } from "../lib/format.js";
import { featureTarget, replaceAll } from "./cluster.js";
import { PopupPlacement, popupContent } from "./popup.js";
import { colourOf, featureStyle, pointStyle } from "./styles.js";
import { symbolIcon, symbolSize } from "./symbols.js";

const MOVE_SETTLE_MS = 150;

/** A layer's definition as the map uses it: the config's entry with its fields by name. */
export function layerDef(config) {
  return Object.freeze({ ...config, fields: Object.fromEntries(config.fields.map((f) => [f.name, f])) });
}

/**
 * A point: the layer's declared symbol (``style.icon``) in the feature's status colour, or a dot on
 * the shared canvas for a layer that declares none (dense ones such as manhole covers).
 */
export function pointItem(layer, feature, latlng) {
  if (!layer.style.icon) return L.circleMarker(latlng, pointStyle(layer, feature));
  const value = layer.styleField ? (feature.properties || {})[layer.styleField] : null;
  const icon = symbolIcon(layer.style.icon, colourOf(layer, feature), {
    size: symbolSize(layer),
    data: { layer: layer.id, fid: feature.id, status: value },
  });
  return L.marker(latlng, { icon, keyboard: false });
}

export class ApiLayer {
  /** ``page``: {map, api, shift, cfg, text, status, editor, restack, popups} shared by the page's layers. */
  constructor(page, group, layer) {
    this.page = page;
    this.map = page.map;
    this.group = group;
    this.layer = layer;
    this.count = 0;
    this.matched = 0;
    this.loading = false;
    this.requests = 0;
    this.bbox = null;
    this.openId = null; // the feature whose popup is open, reopened after a refetch
    this.kept = null; // that popup's content, kept while the feature is unchanged
    this.note = null; // a message for a feature's next popup: saved, or changed by someone else
    this.editingId = null; // the feature being reshaped, drawn by the shape editor instead
    this.redrawing = false;
    this.target = featureTarget(layer).addTo(group);
  }

  visible() {
    return this.map.hasLayer(this.group);
  }

  bboxParam() {
    const b = this.map.getBounds().pad(0.1);
    const { shift } = this.page;
    const [w, s] = shift.toData(Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90));
    const [e, n] = shift.toData(Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90));
    return [w, s, e, n].map((v) => Math.min(Math.max(v, -180), 180).toFixed(6)).join(",");
  }

  /**
   * Fetch the layer for the view; ``force`` refetches an unchanged view (after a change was saved).
   * A published page (``cfg.data``, see geoapp publish) fetches its layer's static file once, whole.
   */
  async refresh(force) {
    if (!this.visible()) return;
    const file = this.page.cfg.data ? this.page.cfg.data[this.layer.id] : null;
    const bbox = file ? "whole layer" : this.bboxParam();
    if (bbox === this.bbox && !force) return; // this view is drawn already, or on its way
    this.bbox = bbox;
    this.requests += 1;
    this.loading = true;
    let payload;
    try {
      payload = await this.page.api.get(file || featurePath(this.layer.id), {
        params: file ? {} : { bbox, limit: this.page.cfg.limit },
        accept: "application/geo+json",
        key: `view:${this.layer.id}`,
      });
    } catch (err) {
      if (isAbort(err)) return; // a newer view's request took over, and will clear ``loading``
      this.loading = false;
      this.bbox = null; // try again on the next move
      this.page.status(`${this.layer.title}: ${this.page.text.loadFailed}`);
      return;
    }
    this.draw(payload);
    this.loading = false;
  }

  draw(payload) {
    const { layer } = this;
    const placement = this.page.popups.options(360);
    const geo = L.geoJSON(this.page.shift.geojson(payload), {
      filter: (feature) => feature.id !== this.editingId,
      pointToLayer: (feature, latlng) => pointItem(layer, feature, latlng),
      style: featureStyle(layer),
      onEachFeature: (feature, item) => {
        item.bindPopup(() => this.popupFor(feature), placement);
        item.bindTooltip(el("span", { text: titleOf(layer, feature) }), { sticky: true });
        item.on("popupopen", () => (this.openId = feature.id));
        item.on("popupclose", () => {
          if (!this.redrawing) this.forget();
        });
      },
    });
    // the open popup stays open, untouched, while its feature is unchanged and there is no news about it: a
    // refetch (the view moved, even by the popup's own panning) must not close it under the user's hand
    const open = !this.note && this.openId !== null ? this.find(this.openId) : null;
    const fresh = open ? geo.getLayers().find((item) => item.feature.id === this.openId) : null;
    const keep = open && fresh && open.isPopupOpen() && fresh.feature.version === open.feature.version ? open : null;
    const items = keep ? geo.getLayers().filter((item) => item !== fresh) : geo.getLayers();
    const reopen = keep ? null : this.note ? this.note.id : this.openId;
    this.redrawing = true; // removing the old items closes their popups: that is not the user closing them
    replaceAll(this.target, items, keep);
    this.redrawing = false;
    if (!keep) this.openId = null;
    this.page.restack(layer.id);
    if (reopen !== null && !this.open(reopen)) {
      this.forget(); // it left the view, or was removed: the status line has the news
      this.note = null;
    }
    this.count = payload.numberReturned;
    this.matched = payload.numberMatched;
    if (this.matched > this.count) this.page.status(`${layer.title}: ${this.page.text.tooMany}`);
    this.map.fire("geoapp:drawn", { layer: layer.id, count: this.count });
  }

  find(id) {
    return this.target.getLayers().find((item) => item.feature && item.feature.id === id);
  }

  /** Open a feature's popup, zooming into its cluster if it is in one; false if it is not drawn. */
  open(id) {
    const item = this.find(id);
    if (!item) return false;
    if (this.map.hasLayer(item) || !this.target.zoomToShowLayer) item.openPopup();
    else this.target.zoomToShowLayer(item, () => item.openPopup());
    return true;
  }

  /**
   * A feature's popup content. A refetch (the view moved, or another feature was saved) redraws
   * every item; the open popup then comes back with the same content, so a half-made choice is
   * kept, unless the feature changed or there is news about it.
   */
  popupFor(feature) {
    this.page.popups.measure();
    const kept = this.kept;
    if (kept && !this.note && kept.id === feature.id && kept.version === feature.version) return kept.node;
    const { editor, text, cfg } = this.page;
    const extra = editor && this.layer.editable ? [editor.popupBlock(this, feature)] : [];
    const node = popupContent(this.layer, feature, { text, lang: cfg.lang, featurePage: cfg.featurePage }, extra);
    this.kept = { id: feature.id, version: feature.version, node };
    return node;
  }

  forget() {
    this.openId = null;
    this.kept = null;
  }

  /** The note left for feature ``id``'s popup, once. */
  takeNote(id) {
    if (!this.note || this.note.id !== id) return null;
    const note = this.note;
    this.note = null;
    return note;
  }

  /** Refetch the layer and reopen the feature's popup with a message (also shown on the status line). */
  reload(id, text, kind) {
    this.note = { id, text, kind };
    this.page.status(text);
    if (!this.visible()) this.map.addLayer(this.group);
    this.refresh(true);
  }
}

/**
 * One ApiLayer per configured layer (in the declared order, bottom first), refetched when the
 * view settles or a layer is switched on. Returns {byId, refreshAll}.
 */
export function apiLayers(page, groups, defs) {
  page.popups = new PopupPlacement(page.map);
  const byId = {};
  defs.forEach((def) => (byId[def.id] = new ApiLayer(page, groups[def.id], def)));
  // all vectors share one canvas, drawn in the order they arrive: keep the declared order instead
  page.restack = (drawnId) => {
    const above = defs.slice(defs.findIndex((d) => d.id === drawnId) + 1);
    above.forEach((d) => byId[d.id].target.eachLayer((item) => item.bringToFront && item.bringToFront()));
  };
  const refreshAll = () => Object.values(byId).forEach((l) => l.refresh());
  let timer = null;
  page.map.on("moveend", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshAll, MOVE_SETTLE_MS);
  });
  page.map.on("overlayadd", () => refreshAll());
  return { byId, refreshAll };
}
