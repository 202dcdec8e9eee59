/*
 * The one way the browser talks to the geoapp API, for every page.
 *
 * JSON in and out; the CSRF token on every change; a feature's version as If-Match, so that
 * the server refuses (409) a change to a feature someone else saved since; the error shape
 * {"error": {"code", "message", "parameter"}} decoded into an ApiError. A request made under a
 * key (one logical request: "the search box", "this layer's view") aborts the one still in
 * flight under the same key, so an older, slower answer can never land after a newer one.
 */

export class ApiError extends Error {
  /** status 0: the server could not be reached. */
  constructor(status, error) {
    const { code = null, message = "", parameter = null } = error || {};
    super(message || (status ? `HTTP ${status}` : "network error"));
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.parameter = parameter;
  }
}

/** True for the rejection of a request that a newer one under the same key replaced. */
export function isAbort(err) {
  return Boolean(err) && err.name === "AbortError";
}

function superseded() {
  return new DOMException("a newer request replaced this one", "AbortError");
}

export class Api {
  /** ``base``: the API's root ("/api"); ``csrf``: the token sent with changes (editors only). */
  constructor({ base, csrf = null }) {
    this.base = base;
    this.csrf = csrf;
    this.inFlight = new Map(); // key -> AbortController
  }

  url(path, params) {
    // commas stay as they are (a bbox reads "w,s,e,n" in the logs); everything else is encoded
    const encode = (value) => encodeURIComponent(value).replace(/%2C/gi, ",");
    const query = Object.entries(params || {})
      .map(([name, value]) => `${encode(name)}=${encode(value)}`)
      .join("&");
    return `${this.base}${path}${query ? `?${query}` : ""}`;
  }

  /** Abort the request in flight under ``key``, if there is one. */
  abort(key) {
    const controller = this.inFlight.get(key);
    if (controller) {
      controller.abort();
      this.inFlight.delete(key);
    }
  }

  /**
   * Send a request; resolve to the decoded JSON body. Reject with an ApiError (the server's
   * message and parameter, or status 0 when it could not be reached), or with an AbortError
   * when a newer request under the same ``key`` replaced this one (see isAbort).
   */
  async request(path, options = {}) {
    const { payload } = await this.exchange(path, options);
    return payload;
  }

  get(path, options) {
    return this.request(path, { ...options, method: "GET" });
  }

  /**
   * A conditional GET: send ``etag`` as If-None-Match; resolve to {changed: false, etag} on a 304
   * (what was drawn still holds) or {changed: true, etag, payload}. Rejects as request() does.
   */
  async poll(path, { params, etag, key } = {}) {
    // no-store: the browser's cache must not answer for the server (the page asks with its own ETag)
    const answer = await this.exchange(path, { params, key, etag, cache: "no-store" });
    if (answer.status === 304) return { changed: false, etag };
    return { changed: true, etag: answer.etag, payload: answer.payload };
  }

  /** The one place a request is sent: headers, the abort of an older request under ``key``, errors. */
  async exchange(path, { method = "GET", params, body, version, key, etag, cache, accept = "application/json" } = {}) {
    const headers = { Accept: accept };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && this.csrf) headers["X-CSRFToken"] = this.csrf;
    if (version !== undefined && version !== null) headers["If-Match"] = `"${version}"`;
    if (etag) headers["If-None-Match"] = etag;
    let controller = null;
    if (key) {
      this.abort(key);
      controller = new AbortController();
      this.inFlight.set(key, controller);
    }
    const signal = controller ? controller.signal : undefined;
    try {
      let response;
      try {
        response = await fetch(this.url(path, params), {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: "same-origin",
          cache,
          signal,
        });
      } catch (err) {
        if (isAbort(err)) throw err;
        throw new ApiError(0);
      }
      if (response.status === 304) return { status: 304, etag, payload: null };
      const payload = await response.json().catch((err) => {
        if (isAbort(err)) throw err;
        return null; // not JSON: the status says what happened
      });
      if (signal && signal.aborted) throw superseded();
      if (!response.ok) throw new ApiError(response.status, payload && payload.error);
      return { status: response.status, etag: response.headers.get("ETag"), payload };
    } finally {
      if (key && this.inFlight.get(key) === controller) this.inFlight.delete(key);
    }
  }

  post(path, body, options) {
    return this.request(path, { ...options, method: "POST", body });
  }

  patch(path, body, options) {
    return this.request(path, { ...options, method: "PATCH", body });
  }
}

/** The API path of a layer's features, or of one feature. */
export function featurePath(layerId, fid) {
  const layer = `/layers/${encodeURIComponent(layerId)}/features`;
  return fid === undefined || fid === null ? layer : `${layer}/${encodeURIComponent(fid)}`;
}
