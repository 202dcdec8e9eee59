/* A line at the bottom of the map for news that is not about one popup: load failures, saves. */
import { el } from "../lib/dom.js";

const SHOWN_MS = 6000;

export function statusLine(map) {
  const control = L.control({ position: "bottomleft" });
  let node = null;
  let timer = null;
  control.onAdd = () => {
    node = el("div", { class: "geoapp-status", role: "status" });
    node.hidden = true;
    return node;
  };
  control.show = (text) => {
    if (!node) return;
    node.textContent = text;
    node.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => (node.hidden = true), SHOWN_MS);
  };
  return control.addTo(map);
}
