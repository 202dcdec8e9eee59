/*
 * The situation: how many monitored features are at each level, and the list of them, most
 * severe first (as the API, or the scenario, sorts them). A row opens its feature's popup on the
 * map and asks for what is nearest to it.
 */
import { el } from "../../lib/dom.js";
import { metres } from "../../lib/format.js";
import {
  closureBadge,
  closureState,
  depthText,
  featureSymbol,
  layerTitle,
  levelChip,
  levelLook,
  staleText,
  trendText,
} from "./look.js";

const LEVELS = ["danger", "warning", "stale", "attention", "normal"];

export function situationList(board) {
  const { rules, text } = board;
  const counts = document.querySelector(".geoapp-board-counts");
  const list = document.querySelector(".geoapp-situation-list");

  function renderCounts(features) {
    const byLevel = Object.fromEntries(LEVELS.map((level) => [level, 0]));
    features.forEach((f) => (byLevel[f.level] = (byLevel[f.level] || 0) + 1));
    const chips = LEVELS.map((level) => {
      const look = levelLook(rules, level);
      const count = el("span", { class: `geoapp-count geoapp-count-${level}`, "data-level": level }, [
        el("i", { class: "geoapp-count-swatch" }),
        el("span", { text: look.label }),
        el("strong", { text: String(byLevel[level]) }),
      ]);
      count.firstChild.style.background = look.color;
      return count;
    });
    counts.replaceChildren(...chips);
  }

  /** What was measured: the depth and its trend, or the scenario's ponding rate, or "no data since". */
  function measure(f) {
    if (f.level === "stale") return [el("span", { class: "geoapp-row-stale", text: staleText(board, f) })];
    if (f.scenario) return [el("span", { class: "geoapp-row-depth", text: `${text.pondsAt} ${f.ponding_mmh} mm/h` })];
    return [
      el("span", { class: "geoapp-row-depth", text: depthText(f.depth_cm) }),
      el("span", {
        class: `geoapp-row-trend ${f.trend_cm_h > 0 ? "geoapp-rising" : ""}`,
        title: text.trend,
        text: trendText(f.trend_cm_h),
      }),
    ];
  }

  function row(f) {
    const closure = closureState(board, f);
    const second = [el("span", { class: "geoapp-row-layer", text: layerTitle(board, f.layer) })];
    if (closure) second.push(closureBadge(closure, "geoapp-row-closure"));
    if (f.nearest_pump) {
      second.push(
        el("span", {
          class: "geoapp-row-pump",
          text: `${text.nearestPump}: ${f.nearest_pump.name} ${metres(f.nearest_pump.distance_m)}`,
        }),
      );
    }
    const item = el(
      "li",
      {
        class: `geoapp-row geoapp-row-${f.level}${closure ? ` geoapp-row-${closure.kind}` : ""}`,
        tabindex: "0",
        "data-layer": f.layer,
        "data-fid": String(f.fid),
        "data-level": f.level,
      },
      [
        el("span", { class: "geoapp-row-symbol" }, [featureSymbol(board, f, 22)]),
        el("span", { class: "geoapp-row-main" }, [
          el("span", { class: "geoapp-row-first" }, [
            el("span", { class: "geoapp-row-name", text: f.name }),
            el("span", { class: "geoapp-row-measure" }, measure(f)),
          ]),
          el("span", { class: "geoapp-row-second" }, second),
        ]),
        levelChip(board, f),
      ],
    );
    item.style.borderLeftColor = levelLook(rules, f.level).color;
    const go = () => {
      board.open(f.layer, f.fid);
      board.onSelect(f); // and what is nearest to it
    };
    item.addEventListener("click", go);
    item.addEventListener("keydown", (e) => e.key === "Enter" && go());
    return item;
  }

  /** Show ``features`` (live, or the scenario's); the list keeps where it was scrolled to. */
  return function render(features) {
    renderCounts(features);
    const scroll = list.scrollTop;
    list.replaceChildren(...features.map(row));
    list.scrollTop = scroll;
  };
}
