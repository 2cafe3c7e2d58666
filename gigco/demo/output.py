"""The demo's terminal output: a status line with a spinner, steps, and the timeline table."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class Glyphs:
    """The characters the display draws with."""

    spinner: str
    done: str
    arrow: str
    star: str


UNICODE = Glyphs(spinner="⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", done="✓", arrow="→", star="★")
ASCII = Glyphs(spinner="|/-\\", done="*", arrow="->", star="*")


def glyphs_for(out: TextIO) -> Glyphs:
    """Unicode glyphs when ``out`` can encode them, ASCII otherwise."""
    try:
        "".join(vars(UNICODE).values()).encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return UNICODE


class Progress:
    """A status line: a spinner redrawn in place on a terminal, one line per change otherwise."""

    def __init__(self, out: TextIO, *, tty: bool | None = None):
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.glyphs = glyphs_for(out)
        self._frames = itertools.cycle(self.glyphs.spinner)
        self._width = 0
        self._last = ""

    def waiting(self, what: str, state: str, elapsed: float) -> None:
        """Show that the demo waits for ``what`` while the job is in ``state``."""
        if self.tty:
            line = f"{next(self._frames)} waiting for {what} · {state} · {elapsed:.1f}s"
            self.out.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.out.flush()
        elif state != self._last:
            self.out.write(f"  … waiting for {what}: {state} ({elapsed:.1f}s)\n")
            self.out.flush()
        self._last = state

    def step(self, message: str) -> None:
        """Print a finished step on its own line."""
        self.clear()
        self.out.write(f"{self.glyphs.done} {message}\n")
        self.out.flush()

    def clear(self) -> None:
        """Erase the status line, if one is drawn."""
        if self.tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()
        self._width = 0
        self._last = ""


def money(cents: int | None) -> str:
    """``19800`` as ``$198.00``."""
    return "—" if cents is None else f"${cents / 100:,.2f}"


def _clock(stamp: str) -> str:
    moment = dt.datetime.fromisoformat(stamp).astimezone(dt.UTC)
    return moment.strftime("%H:%M:%S.%f")[:-3]


def timeline_rows(events: Sequence[dict[str, Any]], arrow: str = "→") -> list[tuple[str, ...]]:
    """One row per event: seq, time (UTC), type, from → to, actor."""
    rows: list[tuple[str, ...]] = []
    for event in events:
        source, target = event.get("from_status"), event.get("to_status")
        move = f"{source or ''} {arrow} {target}".strip() if target else ""
        rows.append(
            (str(event["seq"]), _clock(event["created_at"]), event["type"], move, event["actor"])
        )
    return rows


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows under a header, columns padded to their widest cell; the first is right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i == 0 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def print_timeline(
    out: TextIO, job_id: int, events: Sequence[dict[str, Any]], glyphs: Glyphs, took: float
) -> None:
    """Print the job's timeline as a table and the closing line."""
    header = ("seq", "time (UTC)", "type", f"from {glyphs.arrow} to", "actor")
    out.write(f"\nTimeline of job #{job_id}\n")
    for line in render_table(header, timeline_rows(events, glyphs.arrow)):
        out.write(line + "\n")
    out.write(
        f"\nJob #{job_id} went from draft to closed in {took:.1f}s; "
        "the demo's workers are now unavailable.\n"
    )
    out.flush()


@contextmanager
def finishing(progress: Progress) -> Iterator[None]:
    """Never leave a half-drawn status line behind an error or Ctrl-C."""
    try:
        yield
    finally:
        progress.clear()
