"""``gigco demo``: drive one job through its whole lifecycle over the HTTP API.

``client`` is the HTTP client, ``scenario`` the run itself, ``output`` what the terminal shows.
"""

from gigco.demo.client import DemoError
from gigco.demo.scenario import DEFAULT_URL, run_demo

__all__ = ["DEFAULT_URL", "DemoError", "run_demo"]
