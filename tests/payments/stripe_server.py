"""Run localstripe (a stateful Stripe-API server from PyPI) on 127.0.0.1:<port>, its state in
memory only: ``python stripe_server.py <port>``.

localstripe's own ``start()`` listens on every interface and pickles its whole store to
/tmp/localstripe.pickle on every write (one file for every run on the machine); this
launcher serves the same app on loopback only and keeps the store in memory.
"""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe import resources
from localstripe.server import app


def main() -> None:
    """Serve until killed."""
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
