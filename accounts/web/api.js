// The accounts API as weave's pages call it (app.js, settings.js): JSON in
// and out, an optional typed Bearer token (the token itself, never its Hawk
// id; see bearerToken in accounts/service.go), failures thrown as ApiError.
'use strict';
(function (global) {
  const prefix = global.document.body.dataset.prefix || '';

  class ApiError extends Error {
    constructor(status, b) {
      super(b && b.message ? b.message : 'HTTP ' + status);
      this.status = status;
      this.errno = b && b.errno;
      this.body = b || {};
    }
  }

  async function api(method, path, data, bearer) {
    const headers = {};
    if (data !== undefined) headers['Content-Type'] = 'application/json';
    if (bearer) headers.Authorization = 'Bearer ' + bearer;
    let r;
    try {
      r = await global.fetch(prefix + '/v1' + path, {
        method, headers, body: data === undefined ? undefined : JSON.stringify(data),
        credentials: 'omit', cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, { message: 'The server cannot be reached.' });
    }
    let b = {};
    try {
      b = await r.json();
    } catch (e) { /* not JSON: keep {} */ }
    if (!r.ok) throw new ApiError(r.status, b);
    return b;
  }

  global.WeaveApi = Object.freeze({ ApiError, api });
})(window);
