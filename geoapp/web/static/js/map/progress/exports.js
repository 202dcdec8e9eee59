/*
 * The ledger buttons (台账): XLSX and CSV of every row the table's filters, view and sort match (no
 * paging), from GET /api/progress/<layer>/ledger.xlsx|csv with the table's own query. Beside them the GIS
 * files (GET /api/layers/<layer>/export.<format>) take the filters the features API has: the field filters
 * and the map's view; when a date, a search or "overdue" narrows the table, their title says they do not.
 */

export function exportLinks(view) {
  const { api, layer, query } = view;
  const links = [...document.querySelectorAll(".geoapp-export:not(.geoapp-gis-export)")];
  const gis = [...document.querySelectorAll(".geoapp-gis-export")];
  const partial = document.querySelector(".geoapp-gis-exports");
  return function update() {
    const params = query.tableParams({ paged: false });
    links.forEach((link) => {
      const kind = link.classList.contains("geoapp-export-csv") ? "csv" : "xlsx";
      link.href = api.url(`/progress/${encodeURIComponent(layer.id)}/ledger.${kind}`, params);
    });
    const fields = new Set([...layer.progress.filters, "bbox"]);
    const kept = Object.fromEntries(Object.entries(params).filter(([name]) => fields.has(name)));
    const dropped = ["from", "to", "q", "overdue"].some((name) => name in params);
    gis.forEach((link) => {
      link.href = api.url(`/layers/${encodeURIComponent(layer.id)}/export.${link.dataset.format}`, kept);
      if (dropped && partial) link.title = partial.dataset.partial;
      else link.removeAttribute("title");
    });
  };
}
