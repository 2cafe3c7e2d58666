"""Numbers a scenario measured, gathered into one section at the end of the run.

Each is kept in its test report's ``user_properties``, which pytest-xdist carries from the
worker that ran the test to the process that prints the summary.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


def recorder(request: pytest.FixtureRequest, kind: str) -> Callable[[str], None]:
    """A function that records a line of ``kind`` for the summary (and prints it)."""

    def add(line: str) -> None:
        entry = f"{request.node.name}: {line}"
        print(entry)  # noqa: T201 the test's own output
        request.node.user_properties.append((kind, entry))

    return add


def summarize(terminalreporter: pytest.TerminalReporter, kind: str) -> None:
    """Print every line of ``kind`` the run's tests recorded, under the heading ``kind``."""
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == kind
    ]
    if lines:
        terminalreporter.section(kind)
        for line in lines:
            terminalreporter.write_line(line)
