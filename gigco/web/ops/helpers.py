"""How the console's templates show times, durations, money and JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gigco.db import utcnow


def when(value: dt.datetime | None) -> str:
    """A moment in UTC to the millisecond, or a dash."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``3.0 min ago`` or ``in 1.5 h``, relative to ``now``."""
    if value is None:
        return ""
    seconds = ((now or utcnow()) - value).total_seconds()
    amount = abs(seconds)
    if amount < 60:
        text = f"{amount:.1f} s"
    elif amount < 3600:
        text = f"{amount / 60:.0f} min"
    elif amount < 86400:
        text = f"{amount / 3600:.1f} h"
    else:
        text = f"{amount / 86400:.1f} d"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def money(cents: int | None, currency: str = "USD") -> str:
    """``19800`` as ``198.00 USD``, or a dash."""
    return "—" if cents is None else f"{cents / 100:,.2f} {currency}"


def as_json(data: Any) -> str:
    """``data`` as sorted JSON, or nothing when empty."""
    # A plain string: Jinja escapes it like any other text.
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str) if data else ""
