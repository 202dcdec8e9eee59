/*
 * What the page asks of the progress API (GET /api/progress/<layer>/rows): the table's page with
 * the summary of every matched row, and the map's set (every row the filters match, the view
 * aside, in pages of the API's largest size). A newer request of either aborts the older one still
 * in flight (lib/api.js keys), so a slow answer never lands after a newer one.
 */
import { isAbort } from "../../lib/api.js";

// the most rows the API gives in one answer
const MOST = 500;

export function rowsPath(layerId) {
  return `/progress/${encodeURIComponent(layerId)}/rows`;
}

/** {table(), set()}: each resolves to the answer, or null when a newer request replaced it. */
export function rowsSource(view) {
  const { api, layer, query } = view;
  const path = rowsPath(layer.id);
  let generation = 0; // the set's pages are asked one after another: a newer set stops an older one between them

  async function table() {
    try {
      return await api.get(path, { params: query.tableParams(), key: "progress:table" });
    } catch (err) {
      if (isAbort(err)) return null;
      throw err;
    }
  }

  async function set() {
    const filters = query.filterParams();
    const mine = ++generation;
    const rows = [];
    try {
      for (let offset = 0; ; offset += MOST) {
        if (mine !== generation) return null;
        const params = { ...filters, sort: layer.titleField, offset, limit: MOST };
        const answer = await api.get(path, { params, key: "progress:set" });
        rows.push(...answer.rows);
        if (!answer.rows.length || offset + MOST >= answer.matched) return rows;
      }
    } catch (err) {
      if (isAbort(err)) return null;
      throw err;
    }
  }

  return { table, set };
}
