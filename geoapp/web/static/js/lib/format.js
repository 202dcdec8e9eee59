/* Values as people read them: labels for codes, units, numbers in the page's language. */

export function formatValue(field, value, lang) {
  if (value === null || value === undefined || value === "") return "—";
  if (field.values) {
    const choice = field.values.find((c) => c.value === value);
    if (choice) return choice.label;
  }
  if (field.type === "boolean") return value ? field.yes : field.no;
  if (field.type === "number") {
    value = Number(value).toLocaleString(lang === "en" ? "en" : "zh-CN", { maximumFractionDigits: 2 });
  }
  return field.unit ? `${value} ${field.unit}` : String(value);
}

/** A feature's title, or "#id" when it has none. */
export function titleOf(layer, feature) {
  const title = (feature.properties || {})[layer.titleField];
  return title === null || title === undefined ? `#${feature.id}` : String(title);
}

/** A translated template with its {placeholders} filled: fill("Not saved: {message}", {message}). */
export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
