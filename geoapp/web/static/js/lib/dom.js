/*
 * DOM helpers that only ever set text: a value from the data reaches the page through
 * textContent, attributes or DOM nodes, never through innerHTML, so a feature named
 * "<img src=x onerror=alert(1)>" or "${alert(1)}" shows as text.
 */

/** An element with attributes ("text" sets its text, "class" its class) and child nodes. */
export function el(tag, attrs, children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([name, value]) => {
    if (value === undefined || value === null) return;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  });
  (children || []).forEach((child) => node.appendChild(child));
  return node;
}

export function button(text, onClick, attrs) {
  const node = el("button", { type: "button", ...attrs, text });
  node.addEventListener("click", onClick);
  return node;
}

/** Show a message of a kind ("ok", "busy", "error", "conflict") on a status node. */
export function say(node, text, kind) {
  node.textContent = text;
  node.dataset.kind = kind;
}

/** A select of a field's fixed values, with ``value`` chosen. */
export function choiceSelect(field, value, attrs) {
  const options = field.values.map((choice) => el("option", { value: choice.value, text: choice.label }));
  const select = el("select", { name: field.name, ...attrs }, options);
  select.value = value === null || value === undefined ? "" : value;
  return select;
}

/** An icon drawn by the stylesheet (static/icons/<name>.svg), with no text of its own. */
export function icon(name) {
  return el("span", { class: `geoapp-icon geoapp-icon-${name}`, "aria-hidden": "true" });
}
