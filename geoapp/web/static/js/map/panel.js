/*
 * Panels that fold on a phone: the layer list and the legend would cover the map there, so each folds
 * into a button that opens it (the stylesheet decides when; on a desk the panel stays open and the
 * button is hidden). One panel of a map is open at a time; a click on the map, a popup opening or
 * Escape folds it again. An open panel never grows over the controls above or below it: its height is
 * held to the room its corner of the map leaves (on a desk too), and measured again when the map, or
 * the panel's content, changes size.
 */
import { el, icon } from "../lib/dom.js";

const GAP = 8; // px kept free between a panel and the controls it would otherwise reach
const PANELS = new WeakMap(); // map -> its folding panels

function visibleRect(node) {
  const rect = node.getBoundingClientRect();
  return rect.width > 0 && rect.height > 0 ? rect : null;
}

function rectsIn(corner) {
  return corner ? [...corner.children].map(visibleRect).filter(Boolean) : [];
}

/**
 * Hold ``container`` (a control in one of the map's corners) to the height its corner leaves: a panel at
 * the bottom may grow up to the controls of the top corner on its side, one at the top down to those of
 * the bottom corner, whatever else shares its own corner.
 */
export function fitPanel(map, container) {
  const corner = container.parentNode;
  if (!corner || !corner.classList) return;
  container.style.maxHeight = "";
  const own = visibleRect(container);
  if (!own) return;
  const frame = map.getContainer().getBoundingClientRect();
  const side = corner.classList.contains("leaflet-left") ? ".leaflet-left" : ".leaflet-right";
  const atBottom = corner.classList.contains("leaflet-bottom");
  const other = map.getContainer().querySelector(`${atBottom ? ".leaflet-top" : ".leaflet-bottom"}${side}`);
  const mine = rectsIn(corner);
  const theirs = rectsIn(other);
  let excess;
  if (atBottom) {
    const limit = theirs.length ? Math.max(...theirs.map((r) => r.bottom)) : frame.top;
    excess = limit + GAP - Math.min(...mine.map((r) => r.top));
  } else {
    const limit = theirs.length ? Math.min(...theirs.map((r) => r.top)) : frame.bottom;
    excess = Math.max(...mine.map((r) => r.bottom)) - (limit - GAP);
  }
  if (excess > 0) container.style.maxHeight = `${Math.max(48, own.height - excess)}px`;
}

/**
 * Make ``container`` fold into a button labelled ``label`` with the icon ``iconName`` on a phone;
 * returns {open, close, fit}.
 */
export function foldable(map, container, { label, iconName }) {
  const toggle = el("button", { type: "button", class: "geoapp-fold-toggle", "aria-expanded": "false", title: label }, [
    icon(iconName),
    el("span", { text: label }),
  ]);
  const panels = PANELS.get(map) || new Set();
  PANELS.set(map, panels);
  const fit = () => fitPanel(map, container);
  const set = (open) => {
    if (open === container.classList.contains("geoapp-open")) return;
    if (open) panels.forEach((other) => other !== panel && other.close());
    container.classList.toggle("geoapp-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    panels.forEach((each) => each.fit()); // a folded panel gives back its room to the others
  };
  const panel = { container, open: () => set(true), close: () => set(false), fit };
  panels.add(panel);
  toggle.addEventListener("click", (e) => {
    e.preventDefault();
    set(!container.classList.contains("geoapp-open"));
  });
  container.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && container.classList.contains("geoapp-open")) {
      set(false);
      toggle.focus();
    }
  });
  container.classList.add("geoapp-foldable");
  container.insertBefore(toggle, container.firstChild);
  L.DomEvent.disableClickPropagation(toggle);
  // a click on the map or a feature's popup folds it again: the map is what the user turned to
  map.on("click popupopen", () => set(false));
  map.on("resize", fit);
  map.on("geoapp:panelchange", (e) => (e.panel === container ? fit() : undefined));
  // the other controls may be added after this one: measure once they are all on the page
  requestAnimationFrame(fit);
  return { open: panel.open, close: panel.close, fit };
}
