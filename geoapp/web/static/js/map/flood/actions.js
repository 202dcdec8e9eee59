/*
 * The commander's actions in a monitored feature's popup: close (an underpass) or seal (an
 * underground space) with a reason, or reopen; and a depth read off a gauge board by hand. Who
 * gets them is the server's decision (cfg.mayClose, cfg.mayReport); the API checks again. After
 * a change the board polls at once, so what was done shows without waiting.
 */
import { button, el, say } from "../../lib/dom.js";
import { isoNow } from "../../lib/format.js";
import { failure } from "./look.js";

function messageLine() {
  return el("p", { class: "geoapp-edit-message", role: "status" });
}

/** Send ``request()`` with ``control`` disabled and "sending…" on ``message``; false (and why) if it failed. */
async function sent(board, control, message, request) {
  control.disabled = true;
  say(message, board.text.sending, "busy");
  try {
    await request();
  } catch (err) {
    control.disabled = false;
    say(message, failure(board.text, err), "error");
    return false;
  }
  return true;
}

/** Close or seal with a reason (required), or reopen the closure in force. */
function closureForm(board, feature, rule) {
  const { api, text } = board;
  const message = messageLine();
  const reason = el("input", {
    type: "text",
    name: "reason",
    maxlength: "500",
    class: "geoapp-reason",
    placeholder: text.reason,
    "aria-label": text.reason,
  });
  const closure = feature.closure;
  const label = closure ? text.reopen : text[`action_${rule.action}`];
  const go = button(
    label,
    async () => {
      const why = reason.value.trim();
      if (!closure && !why) {
        say(message, text.reasonRequired, "error");
        reason.focus();
        return;
      }
      const done = await sent(board, go, message, () => {
        if (closure) {
          const path = `/flood/closures/${encodeURIComponent(closure.id)}/reopen`;
          return api.post(path, why ? { reason: why } : {});
        }
        return api.post("/flood/closures", { layer: feature.layer, feature_id: feature.fid, reason: why });
      });
      if (!done) return;
      say(message, text.done, "ok");
      board.pollNow();
    },
    { class: closure ? "geoapp-reopen" : "geoapp-close", "data-action": closure ? "reopen" : rule.action },
  );
  return el("div", { class: "geoapp-edit geoapp-closure-form" }, [reason, go, message]);
}

/** A depth in cm, observed now. */
function reportForm(board, feature) {
  const { api, text } = board;
  const message = messageLine();
  const value = el("input", {
    type: "number",
    name: "depth_cm",
    min: "0",
    max: "500",
    step: "0.5",
    class: "geoapp-report-value",
    "aria-label": text.reportDepth,
  });
  const send = button(
    text.send,
    async () => {
      const number = Number(value.value);
      if (value.value === "" || !Number.isFinite(number)) {
        value.focus();
        return;
      }
      const done = await sent(board, send, message, () =>
        api.post("/readings", {
          layer: feature.layer,
          feature_id: feature.fid,
          kind: "depth_cm",
          value: number,
          observed_at: isoNow(),
        }),
      );
      if (!done) return;
      send.disabled = false;
      value.value = "";
      say(message, text.sent, "ok");
      board.pollNow();
    },
    { class: "geoapp-report-send" },
  );
  return el("div", { class: "geoapp-edit geoapp-report-form" }, [
    el("label", {}, [el("span", { text: `${text.reportDepth} ` }), value]),
    send,
    message,
  ]);
}

/** The commander's blocks: close/seal or reopen (closable layers), and a manual depth report. */
export function actionBlocks(board, feature) {
  const { cfg, rules } = board;
  const blocks = [];
  const rule = rules.closures[feature.layer];
  if (cfg.mayClose && rule) blocks.push(closureForm(board, feature, rule));
  if (cfg.mayReport) blocks.push(reportForm(board, feature));
  return blocks;
}
