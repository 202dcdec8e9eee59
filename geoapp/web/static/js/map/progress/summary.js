/*
 * The campaign's figures over every row the filters match (the rows answer's ``summary``, not only
 * the page shown): the total, how many are done and the share, how many are overdue; bars by
 * status, and for each other filter field (the agency, the district …) how many of each value are
 * done of how many. Numbers are text; the bars beside them only draw them.
 */
import { el } from "../../lib/dom.js";
import { fill } from "../../lib/format.js";
import { choiceLabel, percent, statusColour } from "./look.js";

function bar(share, colour, className = "geoapp-bar") {
  const fillNode = el("span", { class: "geoapp-bar-fill" });
  fillNode.style.width = `${Math.max(0, Math.min(100, share * 100)).toFixed(1)}%`;
  if (colour) fillNode.style.background = colour;
  return el("span", { class: className, "aria-hidden": "true" }, [fillNode]);
}

/** The values of a field in its vocabulary's order, then any the vocabulary does not know (unset ones). */
function ordered(field, counts) {
  const known = (field.values || []).map((c) => c.value).filter((v) => v in counts);
  return [...known, ...Object.keys(counts).filter((v) => !known.includes(v))];
}

export function summaryPanel(view) {
  const { layer, text, cfg } = view;
  const spec = layer.progress;
  const kpis = document.querySelector(".geoapp-kpis");
  const byStatus = document.querySelector(".geoapp-by-status");
  const byFields = document.querySelector(".geoapp-by-fields");
  const status = layer.fields[layer.statusField];
  const doneLabel = spec.done.map((v) => choiceLabel(status, v, v)).join(" / ");
  // "By agency", not "By Agency": an English label inside a sentence starts small
  const inSentence = (label) => (cfg.lang === "en" ? label.charAt(0).toLowerCase() + label.slice(1) : label);

  function figure(label, value, className, extra = []) {
    return el("div", { class: `geoapp-kpi ${className}` }, [
      el("span", { class: "geoapp-kpi-label", text: label }),
      el("strong", { class: "geoapp-kpi-value", text: String(value) }),
      ...extra,
    ]);
  }

  function renderKpis(summary) {
    const share = percent(summary.done, summary.total, cfg.lang);
    const parts = [
      figure(text.total, summary.total, "geoapp-kpi-total"),
      figure(doneLabel, summary.done, "geoapp-kpi-done"),
      figure(text.doneShare, share, "geoapp-kpi-share", [
        bar(summary.total ? summary.done / summary.total : 0, "#2e7d32", "geoapp-bar geoapp-bar-wide"),
      ]),
    ];
    if (spec.dueField) parts.push(figure(text.overdue, summary.overdue, "geoapp-kpi-overdue"));
    kpis.replaceChildren(...parts);
    kpis.querySelector(".geoapp-kpi-overdue")?.classList.toggle("geoapp-has-overdue", summary.overdue > 0);
  }

  function renderStatus(summary) {
    const counts = summary.by_status || {};
    const rows = ordered(status, counts).map((value) => {
      const swatch = el("i", { class: "geoapp-count-swatch" });
      swatch.style.background = statusColour(layer, value);
      return el("li", { "data-status": value }, [
        el("span", { class: "geoapp-bar-label" }, [
          swatch,
          el("span", { text: choiceLabel(status, value, text.notSet) }),
        ]),
        bar(summary.total ? counts[value] / summary.total : 0, statusColour(layer, value)),
        el("span", { class: "geoapp-bar-count", text: String(counts[value]) }),
      ]);
    });
    byStatus.replaceChildren(el("h3", { text: text.byStatus }), el("ul", {}, rows));
  }

  function renderFields(summary) {
    const groups = spec.filters
      .filter((name) => name !== layer.statusField && summary.by && summary.by[name])
      .map((name) => {
        const field = layer.fields[name];
        const counts = summary.by[name];
        const most = Math.max(1, ...Object.values(counts).map((c) => c.total));
        const rows = ordered(field, counts).map((value) => {
          const { total, done } = counts[value];
          const label = choiceLabel(field, value, text.notSet);
          // the bar's length is the value's total; its green part, what of it is done
          const track = bar(total ? done / total : 0, "#2e7d32");
          track.style.width = `${((100 * total) / most).toFixed(1)}%`;
          return el("li", { "data-value": value, title: fill(text.doneOfTotal, { done, total }) }, [
            el("span", { class: "geoapp-bar-label", text: label }),
            el("span", { class: "geoapp-bar-track" }, [track]),
            el("span", { class: "geoapp-bar-count", text: `${done}/${total}` }),
          ]);
        });
        // a long list (the eight kinds of cover) in two columns, so the figures stay a strip above the map
        const list = el("ul", { class: rows.length > 4 ? "geoapp-two-columns" : "" }, rows);
        return el("div", { class: "geoapp-bars", "data-field": name }, [
          el("h3", { text: fill(text.byField, { field: inSentence(field.label) }) }),
          list,
        ]);
      });
    byFields.replaceChildren(...groups);
  }

  return function render(summary) {
    renderKpis(summary);
    renderStatus(summary);
    renderFields(summary);
  };
}
