/*
 * The table of the campaign's rows (one page of GET /api/progress/<layer>/rows): a column per
 * field of the layer's ``progress.columns``, sortable by a click on its header (aria-sort says
 * how it is sorted), overdue rows highlighted with a badge, a pager, and for editors an edit
 * button per row. A click on a row (or Enter) shows it on the map.
 */
import { button, el, say } from "../../lib/dom.js";
import { fill, formatValue } from "../../lib/format.js";
import { overdueBadge, statusChip } from "./look.js";

/**
 * ``onSort()`` after the sort changed, ``onPage()`` after the page did, ``onPick(row)`` when a row is
 * chosen, ``onEdit(row)`` when its edit button is pressed (editors only).
 */
export function rowsTable(view, { onSort, onPage, onPick, onEdit }) {
  const { layer, text, cfg, query } = view;
  const { state } = query;
  const root = document.querySelector(".geoapp-progress-table");
  const head = root.querySelector("thead");
  const body = root.querySelector("tbody");
  const message = root.querySelector(".geoapp-rows-message");
  const pager = root.querySelector(".geoapp-pager");
  const columns = layer.progress.columns.filter((name) => layer.fields[name]);
  let selected = null;
  let shownOffset = null;

  function sortBy(name) {
    if (state.sort === name) state.order = state.order === "asc" ? "desc" : "asc";
    else Object.assign(state, { sort: name, order: "asc" });
    state.offset = 0;
    header();
    onSort();
  }

  function header() {
    const cells = columns.map((name) => {
      const field = layer.fields[name];
      const sorted = state.sort === name;
      const th = el("th", { scope: "col", "data-field": name, "aria-sort": "none" }, [
        button(field.label, () => sortBy(name), { class: "geoapp-sort" }),
      ]);
      if (sorted) th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
      if (field.type === "number") th.classList.add("geoapp-num");
      return th;
    });
    if (layer.editable) cells.push(el("th", { scope: "col", class: "geoapp-actions", text: text.actions }));
    head.replaceChildren(el("tr", {}, cells));
  }

  function cell(name, row) {
    const field = layer.fields[name];
    const value = row.properties[name];
    if (name === layer.statusField) return el("td", {}, [statusChip(layer, value, cfg.lang)]);
    const shown = formatValue(field, value, cfg.lang);
    const td = el("td", { text: shown });
    if (field.type === "number") td.classList.add("geoapp-num");
    if (field.type === "string" && !field.values && shown.length > 18) td.title = shown; // cut short by the style
    if (name === layer.titleField) {
      td.classList.add("geoapp-row-title");
      if (row.overdue) td.prepend(overdueBadge(view, row), " ");
    }
    return td;
  }

  function line(row) {
    const cells = columns.map((name) => cell(name, row));
    if (layer.editable) {
      const title = row.properties[layer.titleField] ?? `#${row.id}`;
      const edit = button(
        text.edit,
        (e) => {
          e.stopPropagation();
          onEdit(row);
        },
        { class: "geoapp-row-edit", "aria-label": fill(text.editTitle, { title }) },
      );
      cells.push(el("td", { class: "geoapp-actions" }, [edit]));
    }
    const attrs = { tabindex: "0", "data-fid": String(row.id), class: row.overdue ? "geoapp-overdue" : "" };
    const tr = el("tr", attrs, cells);
    if (row.overdue) tr.dataset.overdue = "true";
    if (row.id === selected) tr.setAttribute("aria-selected", "true");
    const pick = () => {
      select(row.id);
      onPick(row);
    };
    tr.addEventListener("click", pick);
    tr.addEventListener("keydown", (e) => e.key === "Enter" && e.target === tr && pick());
    return tr;
  }

  function select(fid) {
    selected = fid;
    body.querySelectorAll("tr").forEach((tr) => {
      if (tr.dataset.fid === String(fid)) tr.setAttribute("aria-selected", "true");
      else tr.removeAttribute("aria-selected");
    });
  }

  function pages(answer) {
    const size = cfg.pageSize;
    const count = Math.max(1, Math.ceil(answer.matched / size));
    const page = Math.floor(answer.offset / size) + 1;
    const go = (offset) => {
      state.offset = offset;
      onPage();
    };
    const previous = button(text.previous, () => go(Math.max(0, answer.offset - size)), { class: "geoapp-page-prev" });
    const next = button(text.next, () => go(answer.offset + size), { class: "geoapp-page-next" });
    previous.disabled = answer.offset <= 0;
    next.disabled = answer.offset + size >= answer.matched;
    const where = el("span", { class: "geoapp-page-of", text: fill(text.pageOf, { page, pages: count }) });
    pager.replaceChildren(previous, where, next);
    pager.hidden = count <= 1;
  }

  /** Show an answer of the rows API; the table keeps where it was scrolled to unless the page changed. */
  function render(answer) {
    if (answer.offset !== shownOffset) root.querySelector(".geoapp-table-scroll").scrollTop = 0;
    shownOffset = answer.offset;
    const first = answer.matched ? answer.offset + 1 : 0;
    const last = answer.offset + answer.rows.length;
    say(message, answer.matched ? fill(text.rowsShown, { first, last, matched: answer.matched }) : text.noRows, "ok");
    body.replaceChildren(...answer.rows.map(line));
    pages(answer);
  }

  header();
  return {
    render,
    select,
    header,
    busy: () => say(message, text.loading, "busy"),
    failed: (err) => say(message, fill(text.loadFailed, { message: err.message || String(err) }), "error"),
  };
}
