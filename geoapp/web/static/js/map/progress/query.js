/*
 * What the table shows, as one object: the filters of the form (templates/progress.html), the sort,
 * the page, and the map's view when "only what the map shows" is ticked. The page's URL follows it
 * (history.replaceState), so a link shares the view; the API parameters are made from it.
 */

/** The query the page opened with: the form's values (the server kept only valid ones) and cfg.view. */
export function viewQuery(view, form) {
  const { layer } = view;
  const spec = layer.progress;
  const state = {
    filters: {},
    from: "",
    to: "",
    q: "",
    overdue: false,
    inView: false,
    sort: view.cfg.view.sort || layer.titleField,
    order: view.cfg.view.order || "asc",
    offset: view.cfg.view.offset || 0,
    bbox: view.cfg.view.bbox ? view.cfg.view.bbox.map((v) => v.toFixed(6)).join(",") : null,
  };

  /** Read the form into the state (the page goes back to its first page when a filter changed). */
  function read() {
    const data = new FormData(form);
    spec.filters.forEach((name) => (state.filters[name] = data.get(name) || ""));
    // the date range, by name (in backquotes: tests/test_pages.py takes the word from before a quote for an import)
    const [from, to] = [`from`, `to`].map((name) => (spec.dateField && data.get(name)) || "");
    Object.assign(state, { from, to });
    state.q = (data.get("q") || "").trim();
    state.overdue = data.get("overdue") === "true";
    state.inView = data.get("in_view") !== null;
  }

  /** The filters as API parameters (no sort, page or view). */
  function filterParams() {
    const params = {};
    Object.entries(state.filters).forEach(([name, value]) => value && (params[name] = value));
    if (state.from) params.from = state.from;
    if (state.to) params.to = state.to;
    if (state.q) params.q = state.q;
    if (state.overdue) params.overdue = "true";
    return params;
  }

  /** The table's parameters: the filters, the view (when ticked), the sort; ``paged`` adds the page. */
  function tableParams({ paged = true } = {}) {
    const params = filterParams();
    if (state.inView && state.bbox) params.bbox = state.bbox;
    params.sort = state.sort;
    params.order = state.order;
    if (paged) Object.assign(params, { offset: state.offset, limit: view.cfg.pageSize });
    return params;
  }

  /** This view's link: /progress?layer=…&<filters>&sort…; what is the default is left out. */
  function pageUrl() {
    const params = { layer: layer.id, ...tableParams({ paged: false }) };
    if (params.sort === layer.titleField && params.order === "asc") {
      delete params.sort;
      delete params.order;
    }
    if (state.offset) params.offset = state.offset;
    const lang = new URLSearchParams(window.location.search).get("lang");
    if (lang) params.lang = lang;
    return `${window.location.pathname}?${new URLSearchParams(params)}`;
  }

  /** Put this view in the address bar, and in the language links of the top bar. */
  function syncUrl() {
    const url = pageUrl();
    if (url !== `${window.location.pathname}${window.location.search}`) window.history.replaceState(null, "", url);
    document.querySelectorAll(".geoapp-lang a").forEach((link) => {
      const target = new URL(url, window.location.href);
      target.searchParams.set("lang", link.getAttribute("lang") === "en" ? "en" : "zh");
      link.setAttribute("href", `${target.pathname}${target.search}`);
    });
  }

  read();
  state.inView = state.inView && state.bbox !== null;
  return { state, read, filterParams, tableParams, pageUrl, syncUrl };
}
