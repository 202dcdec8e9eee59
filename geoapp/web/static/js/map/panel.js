/*
 * On a phone the layer control and the legend would cover the map: there each folds into a
 * button that opens it (the stylesheet decides when; on a desk both stay open and the button
 * is hidden). A click on the map, or a popup opening, folds them again.
 */
import { el, icon } from "../lib/dom.js";

export function foldable(map, container, { label, iconName }) {
  const toggle = el("button", { type: "button", class: "geoapp-fold-toggle", "aria-expanded": "false", title: label }, [
    icon(iconName),
    el("span", { text: label }),
  ]);
  const set = (open) => {
    container.classList.toggle("geoapp-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  };
  toggle.addEventListener("click", (e) => {
    e.preventDefault();
    set(!container.classList.contains("geoapp-open"));
  });
  container.classList.add("geoapp-foldable");
  container.insertBefore(toggle, container.firstChild);
  L.DomEvent.disableClickPropagation(toggle);
  // a click on the map or a feature's popup folds it again: the map is what the user turned to
  map.on("click popupopen", () => set(false));
  return { open: () => set(true), close: () => set(false) };
}
