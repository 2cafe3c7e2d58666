"""One-line ``key=value`` logs with the record's extras, and secrets redacted.

Used by the API (``create_app``) and the Celery worker (``gigco.tasks.app``'s logging
signals). Stdlib only, so that both sides may import it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
# Bearer tokens that users get at sign-up ("gc_" + 43 url-safe characters).
_USER_TOKEN = re.compile(r"\bgc_[A-Za-z0-9_-]{20,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+")
# ANSI escape sequences (colours from Celery's or a library's formatter): CSI, OSC, others.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_BARE = re.compile(r"^[^\s=\"\\]+$")
REDACTED = "[redacted]"
HANDLER_NAME = "gigco"

Context = Callable[[], Mapping[str, Any]]

# The current span's ids (``gigco.tracing`` sets this while tracing is on).
_span_ids: Context | None = None


def correlate(span_ids: Context | None) -> None:
    """Add ``span_ids()`` (``trace_id``, ``span_id``) to every line from now on; None stops."""
    global _span_ids
    _span_ids = span_ids


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text)


def _value(value: Any) -> str:
    text = strip_ansi(value.isoformat() if isinstance(value, dt.datetime) else str(value))
    if text and _BARE.match(text):
        return text
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=… logger=… msg="…" job_id=… task=…``: one line per record.

    ``context`` adds fields from where the record was made (the Celery task, the HTTP
    request), and the trace and span ids when tracing is on (``correlate``); terminal colour
    codes are stripped from every value; ``secrets`` are replaced by ``[redacted]`` wherever
    they appear, as are user tokens and anything after ``Bearer``.
    """

    def __init__(self, *, context: Context | None = None, secrets: Iterable[str | None] = ()):
        super().__init__()
        self.context = context
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one ``key=value`` line."""
        fields: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for context in (self.context, _span_ids):
            if context is not None:
                # A log line must never fail because of its context.
                with contextlib.suppress(Exception):
                    fields.update({k: v for k, v in context().items() if v is not None})
        fields.update(
            (k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        )
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc"] = record.exc_text
        if record.stack_info:
            fields["stack"] = record.stack_info
        return self.redact(" ".join(f"{key}={_value(value)}" for key, value in fields.items()))

    def redact(self, line: str) -> str:
        """``line`` with the secrets, user tokens and bearer credentials replaced."""
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        line = _USER_TOKEN.sub(REDACTED, line)
        return _BEARER.sub(rf"\1{REDACTED}", line)


def use_formatter(handlers: Iterable[logging.Handler], formatter: logging.Formatter) -> None:
    """Give each of ``handlers`` ``formatter`` (Celery's logging signals call this)."""
    for handler in handlers:
        handler.setFormatter(formatter)


def configure_logging(
    level: str, *, context: Context | None = None, secrets: Iterable[str | None] = ()
) -> logging.Handler:
    """Log to stderr in ``key=value`` lines at ``level``; calling it again replaces the handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(KeyValueFormatter(context=context, secrets=secrets))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
