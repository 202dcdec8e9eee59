/* A feature's popup: its layer, title, the layer's popup fields, its photos, a link to its archive page. */
import { Api } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { formatValue, titleOf } from "../lib/format.js";

/**
 * ``extra``: nodes appended below (the edit block, for editors). ``api``: the API's root ("/api"), for the
 * strip of photo thumbnails on a layer whose photos this caller may see (``layer.photos``); without it, the
 * pages' root beside ``featurePage`` ("/features/" -> "/api"). A published page (no featurePage) has none.
 */
export function popupContent(layer, feature, { text, lang, featurePage, api }, extra) {
  const props = feature.properties || {};
  const rows = layer.popup
    .filter((name) => layer.fields[name])
    .map((name) => {
      const field = layer.fields[name];
      return el("tr", {}, [el("th", { text: field.label }), el("td", { text: formatValue(field, props[name], lang) })]);
    });
  if (props.distance_m !== undefined) {
    rows.push(el("tr", {}, [el("th", { text: text.distance }), el("td", { text: `${props.distance_m} m` })]));
  }
  // a published page (static files) has no archive pages: featurePage is null there
  const link = featurePage ? [archiveLink(featurePage, layer.id, feature.id, text.archive)] : [];
  const base = api || (featurePage ? featurePage.replace(/features\/$/, "api") : null);
  const photos = layer.photos && base && feature.id !== undefined ? [photoStrip(base, layer.id, feature.id, text)] : [];
  return el("div", { class: "geoapp-popup" }, [
    el("div", { class: "geoapp-popup-layer", text: layer.title }),
    el("h3", { text: titleOf(layer, feature) }),
    el("table", {}, rows),
    ...photos,
    ...link,
    ...(extra || []),
  ]);
}

/**
 * The feature's photo thumbnails, fetched now (as the popup opens), each linking to the full photo. The strip
 * keeps its room while it loads, so the popup is placed with it; it goes away if there are no photos.
 */
function photoStrip(base, layerId, fid, text) {
  const attrs = { class: "geoapp-popup-photos", role: "group", "aria-label": text.photos, "aria-busy": "true" };
  const strip = el("div", attrs);
  const labels = { before: text.photoBefore, after: text.photoAfter };
  const path = `/layers/${encodeURIComponent(layerId)}/features/${encodeURIComponent(fid)}/photos`;
  new Api({ base })
    .get(path)
    .then(({ photos }) => {
      strip.removeAttribute("aria-busy");
      if (!photos.length) {
        strip.remove();
        return;
      }
      photos.forEach((photo) => {
        const label = labels[photo.stage] || "";
        const alt = [label, photo.caption].filter(Boolean).join(": ");
        const img = el("img", { src: photo.thumb, alt, loading: "lazy" });
        strip.appendChild(el("a", { href: photo.url, title: alt }, [img, el("span", { text: label })]));
      });
    })
    .catch(() => strip.remove()); // no photos shown is all a failed request costs a popup
  return strip;
}

/** The link to a feature's archive page (``featurePage``: the pages' root, "/features/"). */
export function archiveLink(featurePage, layerId, fid, label) {
  return el("a", {
    href: `${featurePage}${encodeURIComponent(layerId)}/${encodeURIComponent(fid)}`,
    class: "geoapp-archive-link",
    text: label,
  });
}

const MARGIN = 6; // px between a popup and the map's edge
const GAP = 6; // px between a popup and a control

function rectOf(node) {
  const r = node.getBoundingClientRect();
  return r.width > 0 && r.height > 0 ? { left: r.left, top: r.top, right: r.right, bottom: r.bottom } : null;
}

function shifted(r, dx, dy) {
  return { left: r.left + dx, top: r.top + dy, right: r.right + dx, bottom: r.bottom + dy };
}

function overlap(a, b) {
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * The smallest move (dx, dy) of ``box`` that keeps it inside ``frame`` (less MARGIN) and clear of every
 * obstacle (by GAP); when no move does both, the one that leaves the least of it outside or covered.
 */
export function clearMove(box, obstacles, frame) {
  const xs = new Set([0, frame.left + MARGIN - box.left, frame.right - MARGIN - box.right]);
  const ys = new Set([0, frame.top + MARGIN - box.top, frame.bottom - MARGIN - box.bottom]);
  obstacles.forEach((o) => {
    xs.add(o.right + GAP - box.left);
    xs.add(o.left - GAP - box.right);
    ys.add(o.bottom + GAP - box.top);
    ys.add(o.top - GAP - box.bottom);
  });
  const reach = GAP - 1; // a control nearer than GAP counts as covering
  const grown = obstacles.map((o) => ({
    left: o.left - reach,
    top: o.top - reach,
    right: o.right + reach,
    bottom: o.bottom + reach,
  }));
  let best = null;
  xs.forEach((dx) =>
    ys.forEach((dy) => {
      const moved = shifted(box, dx, dy);
      const outside =
        Math.max(0, frame.left + MARGIN - moved.left) +
        Math.max(0, moved.right - (frame.right - MARGIN)) +
        Math.max(0, frame.top + MARGIN - moved.top) +
        Math.max(0, moved.bottom - (frame.bottom - MARGIN));
      const covered = grown.reduce((sum, o) => sum + overlap(moved, o), 0);
      // being cut off by the map's edge is worse than lying under a control; any of either, worse than moving
      const cost = (outside * 1000 + covered) * 1000 + Math.abs(dx) + Math.abs(dy);
      if (!best || cost < best.cost) best = { dx, dy, cost };
    }),
  );
  return { dx: Math.round(best.dx), dy: Math.round(best.dy) };
}

/**
 * Where popups open: clear of every control on the map (the zoom and tool column, the search box,
 * the layer list, the legend, the scale), inside the map. Leaflet's own auto-pan knows only a padding
 * rectangle; instead, once a popup is laid out (and an open folding panel has folded, map/panel.js),
 * the map pans by the smallest move that clears it, measured on the controls as they are then.
 */
export class PopupPlacement {
  constructor(map) {
    this.map = map;
    this.frame = null;
    // kept for pages that read them; the placement itself measures each popup when it opens
    this.topLeft = L.point(12, 12);
    this.bottomRight = L.point(12, 12);
    this.watching = null; // the open popup's ResizeObserver
    map.on("popupopen", (e) => {
      if (e.popup.options.geoappPlacement !== this) return;
      this.schedule(e.popup);
      // a popup that grows once open (its photos arrive, a message shows) is placed again
      if (this.watching) this.watching.disconnect();
      if (window.ResizeObserver && e.popup.getElement()) {
        this.watching = new ResizeObserver(() => this.schedule(e.popup));
        this.watching.observe(e.popup.getElement());
      }
    });
    map.on("popupclose", (e) => {
      if (e.popup.options.geoappPlacement === this && this.watching) {
        this.watching.disconnect();
        this.watching = null;
      }
    });
  }

  /** Place ``popup`` on the next frame: once it is laid out and the panels a popup folds have folded. */
  schedule(popup) {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.clear(popup));
  }

  /** Options for bindPopup: a width that fits the screen, and this placement instead of Leaflet's auto-pan. */
  options(maxWidth) {
    const room = this.map.getSize().x - 110; // the map's width, less the control column and the popup's frame
    return {
      maxWidth: Math.max(200, Math.min(maxWidth, room)),
      autoPan: false,
      geoappPlacement: this,
      autoPanPaddingTopLeft: this.topLeft,
      autoPanPaddingBottomRight: this.bottomRight,
    };
  }

  /** Called before a popup's content is built (map/layers.js); the placement measures when it opens. */
  measure() {}

  /** The visible controls of the map, as screen rectangles. */
  obstacles() {
    const corners = this.map.getContainer().querySelectorAll(".leaflet-control-container > div");
    return [...corners].flatMap((corner) => [...corner.children].map(rectOf).filter(Boolean));
  }

  /** Pan the map so that ``popup`` lies clear of the controls, inside the map (nothing when it does). */
  clear(popup) {
    const node = popup.getElement();
    if (!this.map.hasLayer(popup) || !node) return;
    // the popup's box, its tip (down to the feature) and close button included
    const parts = [node, ...node.children].map(rectOf).filter(Boolean);
    if (!parts.length) return;
    const box = {
      left: Math.min(...parts.map((r) => r.left)),
      top: Math.min(...parts.map((r) => r.top)),
      right: Math.max(...parts.map((r) => r.right)),
      bottom: Math.max(...parts.map((r) => r.bottom)),
    };
    const frame = this.map.getContainer().getBoundingClientRect();
    const { dx, dy } = clearMove(box, this.obstacles(), frame);
    if (dx || dy) this.map.panBy([-dx, -dy]);
  }
}
