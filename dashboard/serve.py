"""Serving the dashboard's WSGI app with waitress, a production WSGI server (not Werkzeug's development server).

One function for ``parktwin run`` and ``parktwin dashboard``: :func:`serve` blocks until the process gets
KeyboardInterrupt (Ctrl+C, or a signal handler that raises it), then closes the listening socket and ends
waitress's worker threads before it returns, so the caller's clean-up runs on a quiet server.
"""

from __future__ import annotations

from collections.abc import Callable

from waitress.server import create_server
from werkzeug.middleware.proxy_fix import ProxyFix

DEFAULT_THREADS = 8
"""Requests handled at once: the pages' callbacks, the API and the live refreshes of a few browsers."""


def wsgi_app(app: Callable, behind_proxy: bool) -> Callable:
    """The app as served: behind a reverse proxy, the client address and scheme come from the proxy's
    X-Forwarded-For and X-Forwarded-Proto, trusting exactly one proxy (the nearest hop); else as received."""
    return ProxyFix(app, x_for=1, x_proto=1) if behind_proxy else app


def dashboard_server(app: Callable, host: str, port: int, *, threads: int = DEFAULT_THREADS,
                     behind_proxy: bool = False):
    """A waitress server of the WSGI ``app`` bound to host:port (0: a free port, see ``effective_port``), not
    yet serving: its ``run()`` serves until KeyboardInterrupt, ``close()`` stops listening. No ``Server``
    header names the software; without a proxy, forwarded headers (X-Forwarded-*) are dropped.
    Raises OSError when the address cannot be bound."""
    return create_server(wsgi_app(app, behind_proxy), host=host, port=port, threads=threads, ident=None,
                         clear_untrusted_proxy_headers=not behind_proxy)


def serve(app: Callable, host: str, port: int, *, threads: int = DEFAULT_THREADS,
          behind_proxy: bool = False) -> None:
    """Serve the WSGI ``app`` on host:port until KeyboardInterrupt (see :func:`dashboard_server`)."""
    server = dashboard_server(app, host, port, threads=threads, behind_proxy=behind_proxy)
    try:
        server.run()  # returns after KeyboardInterrupt, its worker threads told to stop
    except KeyboardInterrupt:
        pass  # arrived before the loop started
    finally:
        server.close()
