"""A sentinel:// broker URL: the master's name comes from GIGCO_BROKER_SENTINEL_MASTER, and
Celery and the health check reach Redis through a real Sentinel."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kombu import Connection

from gigco import health, processes
from gigco.broker import QUEUES
from gigco.config import ConfigError, load_settings
from gigco.tasks.celery_settings import celery_settings
from tests.harness.polling import wait_for

MASTER = "gigco-master"


def test_a_sentinel_url_takes_the_master_name_from_the_setting(tmp_path: Path) -> None:
    url = "sentinel://s1:26379;sentinel://s2:26379;sentinel://s3:26379"
    settings = load_settings(
        {
            "GIGCO_DATA_DIR": str(tmp_path),
            "GIGCO_BROKER_URL": url,
            "GIGCO_BROKER_SENTINEL_MASTER": MASTER,
        }
    )
    options = celery_settings(settings)["broker_transport_options"]
    assert settings.broker_url == url
    assert options["master_name"] == MASTER
    # The same bounds as a direct Redis URL: on the master and on each sentinel.
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 2
    assert options["sentinel_kwargs"] == {"socket_timeout": 2, "socket_connect_timeout": 2}
    assert options["visibility_timeout"] == 3600


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GIGCO_BROKER_URL": "sentinel://s1:26379"}, "GIGCO_BROKER_SENTINEL_MASTER must name"),
        (
            {"GIGCO_BROKER_URL": "redis://r:6379/0", "GIGCO_BROKER_SENTINEL_MASTER": MASTER},
            "applies only to a sentinel://",
        ),
    ],
)
def test_a_sentinel_master_without_a_sentinel_url_or_the_reverse_is_refused(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"GIGCO_DATA_DIR": str(tmp_path), **env})


@pytest.fixture
def sentinel(tmp_path: Path, broker_url: str) -> Iterator[int]:
    """A real redis-server in sentinel mode monitoring the test Redis as ``MASTER``."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found on PATH")
    redis = urlsplit(broker_url)
    port = processes.free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {MASTER} {redis.hostname} {redis.port or 6379} 1\n"
    )
    server = subprocess.Popen(
        ["redis-server", str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_broker_is_reached_through_a_real_sentinel(
    sentinel: int, broker_url: str, tmp_path: Path
) -> None:
    db = urlsplit(broker_url).path.lstrip("/") or "0"
    settings = load_settings(
        {
            "GIGCO_DATA_DIR": str(tmp_path),
            "GIGCO_BROKER_URL": f"sentinel://127.0.0.1:{sentinel}/{db}",
            "GIGCO_BROKER_SENTINEL_MASTER": MASTER,
        }
    )
    found = wait_for(
        lambda: (part := health.broker(settings)).status == health.OK and part,
        timeout=30,
        every=0.2,
        what="the health check to reach Redis through the sentinel",
    )
    assert found.facts["transport"] == "sentinel"
    # Queue depths are read through the sentinel's master too (nothing queued on this one).
    assert set(found.facts["queues"]) == set(QUEUES)
    options = celery_settings(settings)["broker_transport_options"]
    with Connection(settings.broker_url, transport_options=options) as conn:
        queue = conn.SimpleQueue("gigco_sentinel_check")
        queue.put({"through": "sentinel"})
        assert queue.get(timeout=5).payload == {"through": "sentinel"}
        queue.clear()
        queue.close()
    # Without the master's name kombu cannot ask the sentinel anything.
    with (
        pytest.raises(Exception, match="master_name"),
        Connection(settings.broker_url, connect_timeout=2) as bare,
    ):
        bare.ensure_connection(max_retries=1)
