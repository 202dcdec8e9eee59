/* Measuring distance and area by clicking on the map, in the data's coordinates (WGS84). */
import { el, icon } from "../lib/dom.js";

const EARTH_RADIUS_M = 6371008.8;
const LINE = { color: "#d81b60", weight: 3, dashArray: "6 4" };

// Geodesic measures on the sphere (metres), good to a few tenths of a percent at district scale.
export function pathLength(map, points) {
  let total = 0;
  for (let i = 1; i < points.length; i += 1) total += map.distance(points[i - 1], points[i]);
  return total;
}

export function sphericalArea(points) {
  const rad = Math.PI / 180;
  let area = 0;
  for (let i = 0; i < points.length; i += 1) {
    const p1 = points[i];
    const p2 = points[(i + 1) % points.length];
    area += (p2.lng - p1.lng) * rad * (2 + Math.sin(p1.lat * rad) + Math.sin(p2.lat * rad));
  }
  return Math.abs((area * EARTH_RADIUS_M * EARTH_RADIUS_M) / 2);
}

function lengthText(metres) {
  return metres >= 1000 ? `${(metres / 1000).toFixed(3)} km` : `${metres.toFixed(1)} m`;
}

export function measureControl(page) {
  const { map, text, shift } = page;
  const control = L.control({ position: "topleft" });
  control.onAdd = () => {
    const toggle = el(
      "a",
      { href: "#", role: "button", title: text.measure, "aria-label": text.measure, class: "geoapp-measure-button" },
      [icon("ruler")],
    );
    const readout = el("div", { class: "geoapp-measure-readout", role: "status" });
    const box = el("div", { class: "leaflet-bar geoapp-measure" }, [toggle, readout]);
    const drawn = L.featureGroup().addTo(map);
    let active = false;
    let points = [];

    const show = () => {
      const data = points.map((p) => L.latLng(shift.toData(p.lng, p.lat).reverse()));
      let line = `${text.length}: ${lengthText(pathLength(map, data))}`;
      if (data.length > 2) line += ` · ${text.area}: ${Math.round(sphericalArea(data)).toLocaleString()} m²`;
      readout.textContent = points.length ? line : text.measureHint;
    };
    const onClick = (e) => {
      points.push(e.latlng);
      drawn.clearLayers();
      L.polyline(points, LINE).addTo(drawn);
      points.forEach((p) => L.circleMarker(p, { radius: 4, color: LINE.color }).addTo(drawn));
      show();
    };
    L.DomEvent.on(toggle, "click", (e) => {
      L.DomEvent.preventDefault(e);
      active = !active;
      box.classList.toggle("active", active);
      toggle.setAttribute("aria-pressed", String(active));
      // while measuring, clicks go to the map, not to the features under them
      map.getContainer().classList.toggle("geoapp-measuring", active);
      map.closePopup();
      points = [];
      drawn.clearLayers();
      readout.textContent = active ? text.measureHint : "";
      if (active) map.on("click", onClick);
      else map.off("click", onClick);
    });
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  return control;
}
