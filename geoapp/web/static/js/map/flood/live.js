/*
 * The live data: /flood/live polled every cfg.pollMs with If-None-Match (a 304 keeps what is
 * drawn) and redrawn in place (``board.render()``), never by reloading the page; and the bar's
 * times that say how fresh it is: "data as of", "board refreshed", and since when polling fails.
 */
import { isAbort } from "../../lib/api.js";
import { fill } from "../../lib/format.js";

/** The "last updated" part of the bar (templates/flood.html). */
function timesBar(board) {
  const { state, text, time } = board;
  const updated = document.querySelector(".geoapp-updated-at");
  const refreshed = document.querySelector(".geoapp-refreshed-at");
  const pollError = document.querySelector(".geoapp-poll-error");
  return () => {
    const live = state.live;
    updated.textContent = live && live.updated_at ? time(live.updated_at) : text.noReadings;
    refreshed.textContent = state.refreshedAt ? time(state.refreshedAt) : "—";
    if (state.failedAt) {
      pollError.hidden = false;
      pollError.textContent = fill(text.pollFailed, { time: time(state.failedAt, true) });
    } else {
      pollError.hidden = true;
      pollError.textContent = "";
    }
    document.body.classList.toggle("geoapp-board-failing", Boolean(state.failedAt));
  };
}

/**
 * The poll loop: ``pollOnce()`` (resolves to false if it failed), ``schedule()`` the next,
 * ``pollNow()`` (after a change of the user's own), ``showTimes()``. On a change after the first
 * it calls ``board.loadResources()``: a resource sent or back changes the nearest pumps too.
 */
export function livePoll(board) {
  const { api, cfg, state } = board;
  const showTimes = timesBar(board);
  let timer = null;

  async function pollOnce() {
    state.polls += 1;
    let answer;
    try {
      answer = await api.poll("/flood/live", { etag: state.etag, key: "live" });
    } catch (err) {
      if (isAbort(err)) return false;
      state.failures += 1;
      state.failedAt = new Date();
      showTimes();
      return false;
    }
    state.refreshedAt = new Date();
    state.failedAt = null;
    if (answer.changed) {
      const first = state.live === null;
      state.etag = answer.etag;
      state.live = answer.payload;
      state.changes += 1;
      board.render();
      if (!first) board.loadResources();
    } else {
      showTimes();
    }
    return true;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      await pollOnce();
      schedule();
    }, cfg.pollMs);
  }

  function pollNow() {
    clearTimeout(timer);
    pollOnce().then(schedule);
  }

  return { pollOnce, schedule, pollNow, showTimes };
}
