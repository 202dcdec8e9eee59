/*
 * How a page's module meets the map folium built. folium's inline script (the one that carries
 * the CSP nonce) creates the Leaflet map and its layer groups, then pushes
 * {page, map, groups, config} onto window.geoapp.maps. The page's entry module, loaded with
 * type="module" (deferred, so it normally runs after that script), calls boot() to start on
 * every entry for its page, whichever of the two ran first.
 */

/**
 * Run ``start(map, groups, config)`` for each map registered for ``page``; what it returns (or
 * resolves to) becomes window.geoapp.state, which tests and the benchmark read.
 */
export function boot(page, start) {
  const root = (window.geoapp = window.geoapp || {});
  const queue = (root.maps = root.maps || []);
  const run = async (entry) => {
    if (entry.page !== page || entry.started) return;
    entry.started = true;
    root.state = await start(entry.map, entry.groups, entry.config);
  };
  queue.forEach(run);
  const push = queue.push.bind(queue);
  queue.push = (...entries) => {
    const length = push(...entries);
    entries.forEach(run);
    return length;
  };
}
