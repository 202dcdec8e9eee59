/*
 * The search box: features by name or code across the layers. Each keystroke (after a pause)
 * asks again under one request key, so a newer query aborts an older one still in flight: only
 * the latest query's answer is ever listed.
 */
import { isAbort } from "../lib/api.js";
import { el } from "../lib/dom.js";

const TYPING_PAUSE_MS = 250;
const LIMIT = 20;

export function searchControl(page) {
  const { map, api, text, shift } = page;
  const control = L.control({ position: "topright" });
  control.onAdd = () => {
    const input = el("input", { type: "search", placeholder: text.searchPlaceholder, "aria-label": text.search });
    const list = el("ul", { class: "geoapp-search-results" });
    const box = el("div", { class: "geoapp-search leaflet-bar" }, [input, list]);
    let timer = null;

    const go = (hit) => {
      const layer = page.layers[hit.layer];
      const [lng, lat] = shift.toMap(hit.lon, hit.lat);
      // the feature is drawn once its layer has been fetched for the new view
      const onDrawn = (e) => {
        if (e.layer !== hit.layer) return;
        map.off("geoapp:drawn", onDrawn);
        if (layer) layer.open(hit.id);
      };
      map.on("geoapp:drawn", onDrawn);
      if (layer && !map.hasLayer(layer.group)) map.addLayer(layer.group);
      map.setView([lat, lng], Math.max(map.getZoom(), 17));
    };

    const show = (results) => {
      if (!results.length) {
        list.replaceChildren(el("li", { class: "geoapp-search-empty", text: text.noResults }));
        return;
      }
      list.replaceChildren(
        ...results.map((hit) => {
          const layer = page.layers[hit.layer];
          const item = el("li", { tabindex: "0" }, [
            el("span", { class: "geoapp-search-title", text: hit.title }),
            el("span", { class: "geoapp-search-layer", text: layer ? layer.layer.title : hit.layer }),
          ]);
          item.addEventListener("click", () => go(hit));
          item.addEventListener("keydown", (e) => e.key === "Enter" && go(hit));
          return item;
        }),
      );
    };

    const run = async () => {
      const q = input.value.trim();
      if (!q) {
        api.abort("search"); // an answer still on its way is for a query no longer asked
        list.replaceChildren();
        return;
      }
      let payload;
      try {
        payload = await api.get("/search", { params: { q, limit: LIMIT }, key: "search" });
      } catch (err) {
        if (isAbort(err)) return; // a newer query replaced this one
        show([]);
        return;
      }
      show(payload.results || []);
    };

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(run, TYPING_PAUSE_MS);
    });
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return box;
  };
  return control;
}
