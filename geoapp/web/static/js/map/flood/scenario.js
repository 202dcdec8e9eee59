/*
 * The rain scenario: "what if it rained R mm/h for H hours" asked of /flood/scenario, shown in
 * place of the live levels under a banner until "back to live". Live values a scenario has no
 * word on (closures, pumps, thresholds) stay beside its levels.
 */
import { isAbort } from "../../lib/api.js";
import { say } from "../../lib/dom.js";
import { fill } from "../../lib/format.js";
import { key } from "./look.js";

/** The monitored features to show: the live ones, or the scenario's merged on them. */
export function shownFeatures(state) {
  const live = state.live ? state.live.features : [];
  if (!state.scenario) return live;
  const byKey = new Map(live.map((f) => [key(f.layer, f.fid), f]));
  // the scenario's order (most severe first); live values (closures, pumps) kept beside its level
  return state.scenario.features.map((s) => ({
    ...(byKey.get(key(s.layer, s.fid)) || { closure: null, nearest_pump: null, thresholds: null }),
    ...s,
    depth_cm: null,
    trend_cm_h: null,
    observed_at: null,
    recommend: byKey.get(key(s.layer, s.fid))?.closure ? null : s.recommend,
    scenario: true,
  }));
}

/** The scenario form and the banner (templates/flood.html); both redraw with ``board.render()``. */
export function scenarioControl(board) {
  const { api, state, text } = board;
  const form = document.querySelector(".geoapp-scenario-form");
  const message = document.querySelector(".geoapp-scenario-message");
  const banner = document.querySelector(".geoapp-scenario-banner");
  const what = document.querySelector(".geoapp-scenario-what");

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = new FormData(form);
    const params = { rain_mm_h: values.get("rain_mm_h"), hours: values.get("hours") };
    say(message, text.sending, "busy");
    let payload;
    try {
      payload = await api.get("/flood/scenario", { params, key: "scenario" });
    } catch (err) {
      if (isAbort(err)) return;
      say(message, fill(text.scenarioFailed, { message: err.message }), "error");
      return;
    }
    say(message, "", "");
    state.scenario = payload;
    what.textContent = fill(text.scenarioWhat, { rate: payload.scenario.rain_mm_h, hours: payload.scenario.hours });
    banner.hidden = false;
    document.body.classList.add("geoapp-scenario-on");
    board.render();
  });
  document.querySelector(".geoapp-back-to-live").addEventListener("click", () => {
    state.scenario = null;
    banner.hidden = true;
    document.body.classList.remove("geoapp-scenario-on");
    board.render();
  });
}
