/*
 * The rain part of the bar: the rain signal in force (or the scenario's) as a coloured chip,
 * and the rain totals of the gauge that set it (or the wettest, or the scenario's) per window.
 */
import { el } from "../../lib/dom.js";
import { fill } from "../../lib/format.js";
import { chip, signalLook, totalsTable } from "./look.js";

export function rainBar(board) {
  const { rules, state, text } = board;
  const signal = document.querySelector(".geoapp-board-signal");
  const rain = document.querySelector(".geoapp-board-rain");
  const label = (words) => el("span", { class: "geoapp-bar-label", text: words });
  const tag = () => (state.scenario ? [el("span", { class: "geoapp-scenario-tag", text: text.scenarioTag })] : []);

  return function render() {
    const live = state.live;
    if (!live) return;
    const scenario = state.scenario;
    const signalId = scenario ? scenario.signal : live.signal.id;
    signal.dataset.signal = signalId || "none";
    signal.replaceChildren(label(text.signal), ...tag(), chip("geoapp-signal-chip", signalLook(rules, signalId)));
    let totals = null;
    let where = "";
    if (scenario) {
      totals = scenario.scenario.totals;
      where = null;
    } else {
      const gauge =
        live.gauges.find((g) => g.fid === live.signal.gauge) ||
        [...live.gauges].sort((a, b) => (b.totals["1"] || 0) - (a.totals["1"] || 0))[0];
      if (gauge) {
        totals = gauge.totals;
        where = gauge.name;
      }
    }
    if (!totals) {
      rain.replaceChildren();
      return;
    }
    rain.replaceChildren(
      ...tag(),
      label(where === null ? text.scenarioRain : fill(text.rainAt, { gauge: where })),
      totalsTable(board, totals),
      el("span", { class: "geoapp-muted", text: "mm" }),
    );
  };
}
