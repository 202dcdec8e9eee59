/*
 * Point symbols: the ``style.icon`` a layer declares (tint, road, building, truck, gauge, fire …)
 * drawn as a small inline SVG in the feature's colour, in an L.divIcon. The shapes are the app's
 * own paths (no icon font, nothing fetched); the SVG is built as DOM nodes, never from a string.
 * The frame tells kinds apart at a glance (a disc for what is watched, a rounded square for what
 * is sent, a diamond for a rain gauge); the white glyph inside says which layer it is.
 */

const SVG = "http://www.w3.org/2000/svg";

// 24 x 24 glyphs, drawn white on the coloured frame
const GLYPHS = {
  tint: ["M12 4.5c0 0-5.2 6.1-5.2 9.6a5.2 5.2 0 0 0 10.4 0c0-3.5-5.2-9.6-5.2-9.6z"],
  road: ["M4.5 18.5v-6a7.5 7.5 0 0 1 15 0v6h-3.2v-6a4.3 4.3 0 0 0-8.6 0v6z", "M11.2 14.5h1.6v4h-1.6z"],
  building: ["M5 17.5h3.5v-3.5h3.5v-3.5h3.5v-3.5h3.5v3H16v3.5h-3.5v3.5H9v3.5H5z"],
  truck: [
    "M3.5 7.5h10v7.5h-10z",
    "M14.5 10h3.2l2.8 3v2h-6z",
    "M7 17.8a1.7 1.7 0 1 0 0.01 0z",
    "M16.8 17.8a1.7 1.7 0 1 0 0.01 0z",
  ],
  pump: ["M7 8.5h10v8H7z", "M11 4.5h2v4h-2z", "M4.5 17.5h15v2h-15z", "M12 10.5l2 3h-4z"],
  box: ["M4.5 10l7.5-4.5 7.5 4.5v8.5h-4v-5h-7v5h-4z"],
  flag: ["M6.5 4.5h2v15h-2z", "M8.5 5h9l-2.5 3.2 2.5 3.3h-9z"],
  people: [
    "M8.5 6.5a2.3 2.3 0 1 0 0.01 0z",
    "M15.5 6.5a2.3 2.3 0 1 0 0.01 0z",
    "M4.5 17.5v-3a3.5 3.5 0 0 1 7 0v3z",
    "M12.5 17.5v-3a3.5 3.5 0 0 1 7 0v3z",
  ],
  gauge: ["M7 5h10l-3 4v8.5h-4V9z", "M9 18.5h6v1.5H9z"],
  fire: ["M12 4c1.2 3.2 5.2 5 5.2 9.4a5.2 5.2 0 0 1-10.4 0c0-2.2 1-3.4 2.2-4.4 0 2 .9 3 1.9 3.2-.2-3.1-.8-5.4 1.1-8.2z"],
};

// the frame of each glyph: a disc (watched), a rounded square (sent), a diamond (measures rain)
const FRAMES = { truck: "square", pump: "square", box: "square", flag: "square", people: "square", gauge: "diamond" };

/** The glyph names there are (a layer declaring another icon gets a plain disc). */
export const SYMBOLS = Object.freeze(Object.keys(GLYPHS));

function node(tag, attrs) {
  const item = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([name, value]) => item.setAttribute(name, String(value)));
  return item;
}

function frame(kind, colour, dashed) {
  const attrs = { fill: colour, stroke: "#ffffff", "stroke-width": 1.6 };
  if (dashed) attrs["stroke-dasharray"] = "3 2";
  if (kind === "square") return node("rect", { x: 1.5, y: 1.5, width: 21, height: 21, rx: 5, ...attrs });
  if (kind === "diamond") return node("path", { d: "M12 0.8 23.2 12 12 23.2 0.8 12z", ...attrs });
  return node("circle", { cx: 12, cy: 12, r: 10.6, ...attrs });
}

/**
 * An SVG element of symbol ``name`` in ``colour``, ``size`` px square. ``closed``: the red and
 * white barrier of a closed underpass or sealed entrance across its lower half; ``stale``: a
 * dashed frame (no recent data).
 */
export function symbolSvg(name, colour, { size = 22, closed = false, stale = false } = {}) {
  const svg = node("svg", { viewBox: "0 0 24 24", width: size, height: size, "aria-hidden": "true" });
  svg.classList.add("geoapp-symbol");
  svg.appendChild(frame(FRAMES[name] || "disc", colour, stale));
  (GLYPHS[name] || []).forEach((d) => svg.appendChild(node("path", { d, fill: "#ffffff" })));
  if (closed) {
    svg.appendChild(node("rect", { x: 1, y: 14.5, width: 22, height: 6, rx: 1.2, fill: "#c62828", stroke: "#fff" }));
    [5, 11, 17].forEach((x) =>
      svg.appendChild(node("path", { d: `M${x} 20.5l3-6h2.2l-3 6z`, fill: "#ffffff" })),
    );
  }
  return svg;
}

/**
 * An L.divIcon showing symbol ``name``; ``data`` becomes data-* attributes of its element (what
 * tests and styles read: layer, fid, level …); ``classes`` are added to the icon's own.
 */
export function symbolIcon(name, colour, { size = 22, closed = false, stale = false, classes = "", data = {} } = {}) {
  const holder = document.createElement("span");
  holder.className = "geoapp-sym-body";
  Object.entries(data).forEach(([key, value]) => {
    if (value !== null && value !== undefined) holder.dataset[key] = String(value);
  });
  holder.appendChild(symbolSvg(name, colour, { size, closed, stale }));
  const half = size / 2;
  return L.divIcon({
    html: holder,
    className: `geoapp-sym ${classes}`.trim(),
    iconSize: [size, size],
    iconAnchor: [half, half],
    popupAnchor: [0, -half],
    tooltipAnchor: [half, 0],
  });
}

/** A point layer's marker size from its style radius (a symbol needs more room than a dot). */
export function symbolSize(layer) {
  return Math.max(18, Math.round((layer.style.radius || 6) * 2 + 6));
}
