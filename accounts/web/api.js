// The accounts API as weave's pages call it (app.js, settings.js): JSON in
// and out, an optional typed Bearer token (the token itself, never its Hawk
// id; see bearerToken in accounts/service.go), failures thrown as ApiError and explained
// in words by explain.
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

  // explain turns a failure into a sentence for the page. more maps the
  // errnos only one page meets to their sentence (or a function of the
  // error); the others are common to every page.
  function explain(e, more) {
    if (!(e instanceof ApiError)) return e && e.message ? e.message : String(e);
    const m = more && Object.hasOwn(more, e.errno) ? more[e.errno] : undefined;
    if (m !== undefined) return typeof m === 'function' ? m(e) : m;
    switch (e.errno) {
      case 102: return 'There is no account with this email.';
      case 103: return 'Incorrect password.';
      case 114: {
        const s = e.body.retryAfter;
        return 'Too many attempts. Try again' + (s ? ' in ' + s + ' seconds.' : ' later.');
      }
      case 201: return 'The server is busy. Try again in a moment.';
      default: return e.message;
    }
  }

  global.WeaveApi = Object.freeze({ ApiError, api, explain });
})(window);
