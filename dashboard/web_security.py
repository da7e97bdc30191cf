"""Browser-facing protections of the dashboard's server: against cross-site request forgery and framing, and
the security headers of every response.

Cross-site request forgery: a request that may change something (any method but GET, HEAD and OPTIONS, so
the API's actions, the pages' own Dash callbacks at ``/_dash-update-component``, sign-in) is refused with 403
when its ``Origin`` header, or without one its ``Referer``, names another origin than the request's own
scheme, host and port; a page on another port of the same host is another origin (``SameSite`` cookies do
not separate ports). A request with neither header is refused when it carries a session cookie (browsers
send ``Origin`` with every POST); an API client using HTTP Basic and no cookie may leave both out. Besides
the sign-in form, such requests send a JSON body (``Content-Type: application/json``) or none at all: HTML
forms cannot send JSON, so form-encoded, multipart and plain-text bodies are refused with 415.

Headers: a Content-Security-Policy (see :func:`content_security_policy`), ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY`` (no page may be framed), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

from dash import Dash
from flask import Request, Response, jsonify, request

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_POSTS = frozenset({"/login", "/logout"})
"""Paths whose POSTs are HTML forms (sign-in and sign-out); every other state change is JSON."""


def content_security_policy(inline_script_hashes: list[str]) -> str:
    """The policy of every response: everything from this server only, nothing framed, no plugins.

    Scripts: this server's files, and the inline scripts Dash writes into its page (the renderer's start-up
    line, the client-side callbacks of Dash pages) by their hashes; Dash's configuration is inline too, but as
    ``application/json`` data, which is not executed. Styles need ``'unsafe-inline'``: plotly.js adds
    ``<style>`` elements for its charts at run time and cannot be given a nonce, and the sign-in page has a
    style attribute; styles cannot run code. Images and fonts may be ``data:`` URIs (Bootstrap's form icons,
    plotly's exports) and ``blob:`` (plotly's image downloads).
    """
    return "; ".join([
        "default-src 'self'",
        "script-src " + " ".join(["'self'", *inline_script_hashes]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def cross_site_problem(req: Request, session_cookie: str) -> str | None:
    """Why a request that may change something is not from one of this server's own pages, else None."""
    own = f"{req.scheme}://{req.host}"
    origin = req.headers.get("Origin")
    if origin is None and req.headers.get("Referer"):
        referer = urlsplit(req.headers["Referer"])
        origin = f"{referer.scheme}://{referer.netloc}"
    if origin is None:
        return "a request with a session cookie and no Origin or Referer" if session_cookie in req.cookies \
            else None
    return None if origin == own else f"origin {origin} is not this server's ({own})"


def protect(app: Dash) -> None:
    """Install the checks and headers on the app's Flask server.

    The policy holds the hashes of the inline scripts Dash writes into its page, some of which (Dash pages'
    own client-side callbacks) Dash adds when it sets up its server on the first request: the policy is made
    on the first response, after that set-up, and kept.
    """
    server = app.server
    policy: list[str] = []
    policy_lock = threading.Lock()

    def the_policy() -> str:
        with policy_lock:
            if not policy:
                policy.append(content_security_policy(list(app.csp_hashes())))
            return policy[0]

    @server.before_request
    def refuse_cross_site_changes():
        if request.method in SAFE_METHODS:
            return None
        problem = cross_site_problem(request, server.config["SESSION_COOKIE_NAME"])
        if problem is not None:
            log.warning("refused %s %s from %s: %s", request.method, request.path, request.remote_addr, problem)
            return jsonify({"error": f"refused: {problem}"}), 403
        bodiless = request.content_type is None and not request.content_length
        if request.path not in FORM_POSTS and not (request.is_json or bodiless):
            return jsonify({"error": f"{request.method} {request.path} takes a JSON body "
                                     "(Content-Type: application/json)"}), 415
        return None

    @server.after_request
    def security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = the_policy()
        response.headers.update(SECURITY_HEADERS)
        return response
