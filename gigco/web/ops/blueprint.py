"""The console's blueprint, its security headers, and the settings its views read."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from gigco.config import Settings

blp = Blueprint(
    "ops",
    __name__,
    url_prefix="/ops",
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def settings() -> Settings:
    """The app's settings."""
    return current_app.config["GIGCO"]


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
