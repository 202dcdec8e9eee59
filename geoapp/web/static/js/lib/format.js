/* Values as people read them: labels for codes, units, numbers in the page's language. */

export function formatValue(field, value, lang) {
  if (value === null || value === undefined || value === "") return "—";
  if (field.values) {
    const choice = field.values.find((c) => c.value === value);
    if (choice) return choice.label;
  }
  if (field.type === "boolean") return value ? field.yes : field.no;
  if (field.type === "datetime") return localStamp(value, { lang });
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

const TIME_FORMATS = new Map();

/**
 * A time (ISO 8601, or a Date) as people in the district read it: in ``timeZone`` (the district's,
 * Asia/Shanghai, whatever the browser's own), "MM-DD HH:MM:SS" or with ``{timeOnly: true}`` "HH:MM:SS".
 */
export function localTime(value, { lang = "zh", timeZone = "Asia/Shanghai", timeOnly = false } = {}) {
  if (value === null || value === undefined || value === "") return "—";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const key = `${lang}|${timeZone}|${timeOnly}`;
  if (!TIME_FORMATS.has(key)) {
    const options = { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
    if (!timeOnly) Object.assign(options, { month: "2-digit", day: "2-digit" });
    TIME_FORMATS.set(key, new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", options));
  }
  const parts = Object.fromEntries(TIME_FORMATS.get(key).formatToParts(date).map((p) => [p.type, p.value]));
  const clock = `${parts.hour}:${parts.minute}:${parts.second}`;
  return timeOnly ? clock : `${parts.month}-${parts.day} ${clock}`;
}

/** A moment (ISO 8601) as "YYYY-MM-DD HH:MM" on the district's clock, whatever the browser's own. */
export function localStamp(value, { lang = "zh", timeZone = "Asia/Shanghai" } = {}) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const key = `stamp|${lang}|${timeZone}`;
  if (!TIME_FORMATS.has(key)) {
    const options = { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" };
    TIME_FORMATS.set(key, new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", { ...options, hourCycle: "h23" }));
  }
  const parts = Object.fromEntries(TIME_FORMATS.get(key).formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

/** Now as ISO 8601 with the browser's offset ("2026-12-02T09:00:00.000+08:00"), as the readings API wants. */
export function isoNow(date = new Date()) {
  const offset = -date.getTimezoneOffset();
  const local = new Date(date.getTime() + offset * 60000).toISOString().slice(0, -1);
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${local}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** A distance in metres as "850 m" or "1.2 km". */
export function metres(value) {
  if (value === null || value === undefined) return "—";
  return value >= 1000 ? `${(value / 1000).toFixed(1)} km` : `${Math.round(value)} m`;
}
