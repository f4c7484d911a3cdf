// Swagger UI for the MLOps No-Code gateway, served by the gateway itself (no CDN, no inline script: the
// page's Content-Security-Policy allows scripts of this origin only). The schema comes from this origin,
// the external validator is off, and a write sent with the browser session carries the session's CSRF
// token (X-CSRF-Token), read once from GET /api/v1/session.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var base = root.getAttribute("data-root") || "";
  var csrf = null;

  function csrfToken() {
    if (csrf) {
      return Promise.resolve(csrf);
    }
    return fetch(base + "/api/v1/session", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (session) { csrf = session ? session.csrf_token : null; return csrf; })
      .catch(function () { return null; });
  }

  window.ui = SwaggerUIBundle({
    url: base + "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor: function (request) {
      var method = (request.method || "GET").toUpperCase();
      request.headers = request.headers || {};
      if (method === "GET" || request.headers.Authorization) {
        return request;
      }
      return csrfToken().then(function (token) {
        if (token) {
          request.headers["X-CSRF-Token"] = token;
        }
        return request;
      });
    },
  });
})();
