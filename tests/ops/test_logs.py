"""One-line key=value logs with job and task context, and no secrets in them."""

from __future__ import annotations

import io
import logging
import sys

from flask import Flask

from gigco import logs
from gigco.config import Settings
from tests.harness.console import Ops
from tests.harness.env import ADMIN_TOKEN


def _line(formatter: logging.Formatter, msg: str, *args: object, **extra: object) -> str:
    record = logging.LogRecord("gigco.tasks", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return formatter.format(record)


def test_a_record_is_one_key_value_line_with_its_extras() -> None:
    line = _line(
        logs.KeyValueFormatter(),
        'step done: "%s"\nsecond line',
        "price",
        job_id=42,
        task="gigco.tasks.steps.price_job",
    )
    assert "\n" not in line
    assert line.startswith("ts=") and " level=WARNING logger=gigco.tasks " in line
    assert 'msg="step done: \\"price\\"\\nsecond line"' in line
    assert line.endswith("job_id=42 task=gigco.tasks.steps.price_job")


def test_an_exception_stays_on_its_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    line = logs.KeyValueFormatter().format(record)
    assert "\n" not in line and "RuntimeError: boom" in line and line.count("ts=") == 1


def test_the_operator_token_and_user_tokens_never_reach_a_log_line(settings: Settings) -> None:
    formatter = logs.KeyValueFormatter(secrets=[settings.admin_token])
    user_token = "gc_" + "A1b2" * 11
    line = _line(
        formatter,
        "settings %s; header %s; user %s",
        settings,  # a dataclass repr carries admin_token=...
        "Authorization: Bearer some-opaque-credential",
        user_token,
    )
    assert ADMIN_TOKEN not in line and user_token not in line
    assert "some-opaque-credential" not in line
    assert line.count(logs.REDACTED) == 3


def test_the_api_logs_refused_logins_as_key_value_lines_without_the_token(app: Flask) -> None:
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME]
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    ops = Ops(app.test_client())
    ops.login(token=ADMIN_TOKEN + "-guess")
    logging.getLogger("gigco.test").warning("config is %s", app.config["GIGCO"])
    lines = out.getvalue().splitlines()
    refused = next(line for line in lines if 'msg="ops login refused"' in line)
    assert "level=WARNING logger=gigco.web.ops.auth" in refused
    assert "method=POST path=/ops/login remote_addr=127.0.0.1" in refused
    assert all(ADMIN_TOKEN not in line for line in lines)
    assert logs.REDACTED in lines[-1]


def test_colour_codes_never_reach_a_line() -> None:
    red, bold, reset = "\x1b[31m", "\x1b[1;33m", "\x1b[0m"
    link = "\x1b]8;;http://x\x1b\\here\x1b]8;;\x1b\\"
    line = _line(
        logs.KeyValueFormatter(), f"{red}worker{reset} ready %s", f"{bold}celery@h{reset}", k=link
    )
    assert "\x1b" not in line
    assert 'msg="worker ready celery@h"' in line and line.endswith(" k=here")


def test_a_sweep_is_logged_at_info_only_when_it_did_something(caplog) -> None:
    from gigco.tasks.sweeps import log_sweep

    caplog.set_level(logging.DEBUG, logger="gigco.sweeps")
    idle = {"timers": 0, "stuck": 0, "deliveries": 0, "sent": 0}
    log_sweep(idle)
    log_sweep(idle | {"timers": 2, "sent": 2})
    log_sweep(idle | {"deliveries": 1})
    levels = [(r.levelname, r.timers, r.deliveries) for r in caplog.records if r.msg == "sweep"]
    assert levels == [("DEBUG", 0, 0), ("INFO", 2, 0), ("INFO", 0, 1)]
