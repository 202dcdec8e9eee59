/*
 * The public's report form (/report), for a phone first: a tap on the map (or "my location") places the
 * pin whose place the form sends; the reports the moderators accepted are drawn, with their public notes
 * as DOM text. Nothing here reads or writes anything else.
 */
import { boot } from "../lib/boot.js";
import { el } from "../lib/dom.js";
import { baseControls, contextLayers, firstView } from "../map/base.js";
import { makeShift } from "../map/shift.js";

async function report(map, groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  baseControls(map, cfg.text);
  contextLayers(map, cfg.context, shift);
  firstView(map, cfg, shift);
  const form = document.querySelector(".geoapp-report-form");
  const lon = form.querySelector("input[name=lon]");
  const lat = form.querySelector("input[name=lat]");
  const where = form.querySelector(".geoapp-report-where");
  const state = { map, cfg, pin: null, shown: 0 };
  let pin = null;
  const place = (latlng) => {
    const [x, y] = shift.toData(latlng.lng, latlng.lat);
    lon.value = x.toFixed(6);
    lat.value = y.toFixed(6);
    if (pin) pin.setLatLng(latlng);
    else pin = L.marker(latlng, { keyboard: false }).addTo(map);
    where.textContent = `${y.toFixed(5)}, ${x.toFixed(5)}`;
    state.pin = [x, y];
  };
  if (lon.value && lat.value) {
    const [x, y] = shift.toMap(Number(lon.value), Number(lat.value));
    place({ lng: x, lat: y });
  }
  map.on("click", (e) => place(e.latlng));
  map.on("locationfound", (e) => place(e.latlng));
  try {
    const shown = await fetch(cfg.reports).then((r) => r.json());
    L.geoJSON(shift.geojson(shown), {
      pointToLayer: (f, latlng) =>
        L.circleMarker(latlng, { radius: 6, color: "#5e35b1", weight: 2, fillOpacity: 0.6 }),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        layer.bindPopup(() =>
          el("div", { class: "geoapp-popup" }, [
            el("div", { class: "geoapp-popup-title", text: `${p.subcategory} · ${p.status}` }),
            el("p", { text: p.public_note || "" }),
          ]),
        );
      },
    }).addTo(map);
    state.shown = shown.features.length;
  } catch {
    // the accepted reports are a courtesy: the form works without them
  }
  return state;
}

boot("report", report);
