"""`/docs`: Swagger UI served from this app (no CDN: it works offline and under the CSP).

The Swagger UI files come from the `fastapi-offline` package; the page has no inline script
(its set-up is `/docs/assets/init.js`), so `/docs` needs no `'unsafe-inline'` for scripts.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API docs</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"""

INIT = """\
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
"""


async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    return HTMLResponse(
        PAGE.format(title=html.escape(app.title), openapi_url=html.escape(app.openapi_url))
    )


async def swagger_init() -> Response:
    return Response(INIT, media_type="text/javascript")


def mount_docs(api: FastAPI) -> None:
    """Serve `/docs` (create the app with `docs_url=None, redoc_url=None`); the app's own
    routes, not an included router's (see `health.add_routes`)."""
    api.add_api_route("/docs", swagger_ui, response_class=HTMLResponse, include_in_schema=False)
    api.add_api_route("/docs/assets/init.js", swagger_init, include_in_schema=False)
    api.mount("/docs/assets", StaticFiles(directory=ASSETS), name="docs-assets")
