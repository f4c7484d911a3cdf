// ReDoc for the MLOps No-Code gateway, served by the gateway itself (no CDN, no inline script, no web
// fonts): the schema comes from this origin.
(function () {
  "use strict";
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-url"), { hideDownloadButton: false }, root);
})();
