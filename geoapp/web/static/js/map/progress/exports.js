/*
 * The ledger buttons (台账): XLSX and CSV of every row the table's filters, view and sort match (no
 * paging), from GET /api/progress/<layer>/ledger.xlsx|csv with the table's own query.
 */

export function exportLinks(view) {
  const { api, layer, query } = view;
  const links = [...document.querySelectorAll(".geoapp-export")];
  return function update() {
    const params = query.tableParams({ paged: false });
    links.forEach((link) => {
      const kind = link.classList.contains("geoapp-export-csv") ? "csv" : "xlsx";
      link.href = api.url(`/progress/${encodeURIComponent(layer.id)}/ledger.${kind}`, params);
    });
  };
}
