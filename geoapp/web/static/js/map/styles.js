/* How a layer's features look: coloured by the layer's style field (usually the status). */

export function colourOf(layer, feature) {
  const value = layer.styleField ? (feature.properties || {})[layer.styleField] : null;
  return (value !== null && value !== undefined && layer.colours[value]) || layer.style.color;
}

export function pointStyle(layer, feature) {
  const fillColor = colourOf(layer, feature);
  return { radius: layer.style.radius, color: "#ffffff", weight: 1.5, fillColor, fillOpacity: 0.95 };
}

export function shapeStyle(layer, feature) {
  const colour = colourOf(layer, feature);
  return { color: colour, weight: layer.style.weight, fillColor: colour, fillOpacity: layer.style.fill_opacity };
}

/** Leaflet's ``style`` option for a layer that may hold points, lines and areas. */
export function featureStyle(layer) {
  return (feature) =>
    feature.geometry.type.endsWith("Point") ? pointStyle(layer, feature) : shapeStyle(layer, feature);
}

/** The context layers (district boundary, roads): a railway is drawn dashed. */
export function contextStyle(context) {
  return (feature) => {
    const value = context.styleField ? feature.properties[context.styleField] : null;
    const colour = (value && context.colours[value]) || context.style.color;
    const railway = value === "railway";
    return {
      color: colour,
      weight: railway ? 4 : context.style.weight,
      dashArray: railway ? "10 6" : null,
      fillColor: colour,
      fillOpacity: context.style.fill_opacity,
    };
  };
}
