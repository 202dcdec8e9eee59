/*
 * The campaign layer on the progress map: the features in view, fetched and drawn as on the one
 * map (map/layers.js ApiLayer: styled by status, the same popups), but only those the table's
 * filters match (the map's set: every matched row, the view aside), with the overdue ones marked:
 * a dashed outline and a "!" badge. A row picked in the table flies the map there and opens its
 * feature's popup; a feature opened on the map is marked in the table.
 */
import { el } from "../../lib/dom.js";
import { ApiLayer } from "../layers.js";
import { PopupPlacement } from "../popup.js";

const MOVE_SETTLE_MS = 150;
// how long a pick waits for a view's features that are already on their way
const DRAWN_WAIT_MS = 10_000;

export class ProgressLayer extends ApiLayer {
  constructor(page, group, layer) {
    super(page, group, layer);
    this.shown = null; // fid -> row of the map's set; null until the first set arrived
    this.payload = null; // the features of the view last fetched, drawn again when the set changes
    this.marks = L.layerGroup().addTo(group);
  }

  draw(payload) {
    this.payload = payload;
    const keep = this.shown;
    const features = keep ? payload.features.filter((f) => keep.has(f.id)) : payload.features;
    const left = payload.features.length - features.length;
    super.draw({ ...payload, features, numberReturned: features.length, numberMatched: payload.numberMatched - left });
    this.markOverdue();
  }

  /** The rows the filters match (the map's set): draw only their features, and mark the overdue ones. */
  setRows(rows) {
    this.shown = new Map(rows.map((row) => [row.id, row]));
    if (this.payload) this.draw(this.payload);
  }

  overdue(fid) {
    const row = this.shown && this.shown.get(fid);
    return Boolean(row && row.overdue);
  }

  markOverdue() {
    const { shift, text } = this.page;
    this.target.eachLayer((item) => {
      if (item.feature && item.setStyle && this.overdue(item.feature.id)) item.setStyle({ dashArray: "7 5" });
    });
    this.marks.clearLayers();
    if (!this.shown) return;
    this.shown.forEach((row) => {
      if (!row.overdue) return;
      const [lng, lat] = shift.toMap(row.lon, row.lat);
      const badge = el("span", { class: "geoapp-overdue-mark", "data-fid": String(row.id), text: "!" });
      const icon = L.divIcon({
        html: badge,
        className: "geoapp-overdue-icon",
        iconSize: [18, 18],
        iconAnchor: [9, 22], // above the point, clear of the feature drawn there
      });
      const mark = L.marker([lat, lng], { icon, keyboard: false, title: text.overdue, zIndexOffset: 500 });
      mark.on("click", () => this.open(row.id));
      this.marks.addLayer(mark);
    });
  }

  /** Resolve once the features of the current view are drawn (fetched now, or already on their way). */
  async settled() {
    await this.refresh();
    if (!this.loading) return;
    await new Promise((resolve) => {
      const timer = setTimeout(done, DRAWN_WAIT_MS);
      const map = this.map;
      const layerId = this.layer.id;
      function done() {
        clearTimeout(timer);
        map.off("geoapp:drawn", onDrawn);
        resolve();
      }
      function onDrawn(e) {
        if (e.layer === layerId) done();
      }
      map.on("geoapp:drawn", onDrawn);
    });
  }

  /** Fly to a row's feature and open its popup; false if it is not on the map (filtered out, or gone). */
  async focus(row) {
    const { map } = this;
    const [lng, lat] = this.page.shift.toMap(row.lon, row.lat);
    const zoom = Math.max(map.getZoom(), this.layer.kind === "point" ? 18 : 17);
    const inner = map.getBounds().pad(-0.15);
    map.closePopup();
    if (map.getZoom() !== zoom || !inner.contains([lat, lng])) {
      const moved = new Promise((resolve) => map.once("moveend", resolve));
      map.flyTo([lat, lng], zoom, { duration: 0.5 });
      await moved;
    }
    await this.settled();
    const opened = this.open(row.id);
    if (!opened) this.page.status(this.page.text.notOnMap);
    return opened;
  }
}

/**
 * The page's map layer in ``group``, refetched when the view settles; ``onOpen(fid)`` when a feature's
 * popup opens on the map.
 */
export function progressLayer(page, group, layer, { onOpen }) {
  page.popups = new PopupPlacement(page.map);
  page.restack = () => {}; // one layer: nothing above it to keep above
  const drawn = new ProgressLayer(page, group, layer);
  drawn.target.on("popupopen", (e) => {
    const item = e.propagatedFrom || e.layer;
    if (item && item.feature) onOpen(item.feature.id);
  });
  let timer = null;
  page.map.on("moveend", () => {
    clearTimeout(timer);
    timer = setTimeout(() => drawn.refresh(), MOVE_SETTLE_MS);
  });
  return drawn;
}
