"""A real Stripe-API server (localstripe) on loopback for the module, with a fault proxy."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gigco.processes import free_port
from tests.harness.polling import wait_for
from tests.payments.fault_proxy import Faults, fault_proxy

API_KEY = "sk_test_gigco"


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[str]:
    """localstripe on 127.0.0.1; its URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("stripe_server.py")), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
        try:
            return requests.get(f"{url}/v1/customers", auth=(API_KEY, ""), timeout=1).ok
        except requests.ConnectionError:
            return False

    wait_for(up, timeout=30, what="localstripe to answer")
    yield url
    server.terminate()
    server.wait(timeout=10)
    if server.stderr is not None:
        server.stderr.close()


@pytest.fixture
def proxied(stripe_server: str) -> Iterator[tuple[str, Faults]]:
    """The fault proxy in front of localstripe (emptied first: job ids repeat across the
    tests' databases): its URL and the faults to inject."""
    requests.delete(
        f"{stripe_server}/_config/data", auth=(API_KEY, ""), timeout=5
    ).raise_for_status()
    with fault_proxy(stripe_server) as (url, faults):
        yield url, faults
