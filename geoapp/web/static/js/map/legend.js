/* The legend: for each layer, a swatch per value of its style field, shaped as the layer is drawn. */
import { el } from "../lib/dom.js";

export function legendControl(layers, text) {
  const control = L.control({ position: "bottomleft" });
  control.onAdd = () => {
    const box = el("div", { class: "geoapp-legend leaflet-bar" }, [el("h4", { text: text.legend })]);
    layers.forEach((layer) => {
      const entries = Object.entries(layer.legend);
      const block = el("div", { class: "geoapp-legend-layer", "data-layer": layer.id }, [
        el("div", { class: "geoapp-legend-title", text: layer.title }),
      ]);
      (entries.length ? entries : [[layer.title, layer.style.color]]).forEach(([label, colour]) => {
        const swatch = el("i", { class: `geoapp-swatch geoapp-swatch-${layer.kind}` });
        swatch.style.background = colour;
        block.appendChild(el("div", { class: "geoapp-legend-row" }, [swatch, el("span", { text: label })]));
      });
      box.appendChild(block);
    });
    L.DomEvent.disableScrollPropagation(box);
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  return control;
}
