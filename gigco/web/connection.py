"""A refused request body does not poison the connection it came on.

A request refused before its body is read (413 on its declared size, 415, 429, 401…) leaves
the body on the socket. gunicorn answers ``Connection: keep-alive`` and afterwards drains at
most 64 KiB of what is left; past that it closes the connection without a word, and the
client's next request on it fails ("Server disconnected without sending a response").

So every answer first reads what is left of its body, up to ``DRAIN_MAX_BYTES``, and drops
it: the connection then carries the client's next request. A body larger than that is not
read (its size costs the client, not us): the answer says ``Connection: close`` instead
(``CloseUnreadConnections``, through gunicorn's response, since WSGI applications may not
send hop-by-hop headers themselves).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, request
from werkzeug.wsgi import get_input_stream

from gigco.web.body import MAX_BODY_BYTES

log = logging.getLogger(__name__)

DRAIN_MAX_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
_CLOSE = "gigco.close_connection"


def drain_unread_body(response: Response) -> Response:
    """Read and drop what is left of the request's body (``after_request``); when more than
    ``DRAIN_MAX_BYTES`` is left, mark the connection to be closed instead."""
    length = request.content_length
    chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if not (length or chunked):
        return response
    if length is not None and length > MAX_BODY_BYTES + DRAIN_MAX_BYTES:
        request.environ[_CLOSE] = True
        return response
    # A server that ends the body itself (gunicorn) gives the raw stream, which knows how far
    # it was read; else the stream the view read from, or, untouched (a 413 on the declared
    # size is raised before Flask makes one), a fresh one bounded by Content-Length.
    environ = request.environ
    if environ.get("wsgi.input_terminated"):
        stream = environ["wsgi.input"]
    else:
        stream = request.__dict__.get("stream") or get_input_stream(environ)
    left = DRAIN_MAX_BYTES
    try:
        while left > 0:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                return response
            left -= len(chunk)
        if stream.read(1):
            request.environ[_CLOSE] = True
    except Exception:  # the client went away or the stream refuses: nothing to reuse
        log.debug("request body not drained", exc_info=True)
        request.environ[_CLOSE] = True
    return response


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class CloseUnreadConnections:
    """WSGI middleware: an answer whose request body was left unread closes its connection
    and says so (``Connection: close``), on gunicorn; other servers decide for themselves."""

    def __init__(self, app: WsgiApp):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve the request; tell gunicorn's response to close when asked to."""

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get(_CLOSE):
                # gunicorn's start_response is its Response's method: force_close() makes
                # it answer "Connection: close" and close after this response.
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
