/* The closures in force (closed underpasses, sealed underground spaces): one row each, which opens its popup. */
import { el } from "../../lib/dom.js";
import { barrier } from "./look.js";

export function closureList(board) {
  const { state, text } = board;
  const list = document.querySelector(".geoapp-closure-list");

  return function render() {
    const closures = state.live ? state.live.closures : [];
    if (!closures.length) {
      list.replaceChildren(el("li", { class: "geoapp-muted", text: text.noClosures }));
      return;
    }
    list.replaceChildren(
      ...closures.map((c) => {
        const what = `${text[`closed_${c.action}`]} · ${board.time(c.closed_at)} · ${c.reason || ""}`;
        const attrs = { class: "geoapp-closure-item", tabindex: "0", "data-layer": c.layer, "data-fid": String(c.fid) };
        const item = el("li", attrs, [
          barrier(),
          el("span", { class: "geoapp-row-name", text: c.name }),
          el("span", { class: "geoapp-muted", text: what }),
        ]);
        item.addEventListener("click", () => board.open(c.layer, c.fid));
        return item;
      }),
    );
  };
}
