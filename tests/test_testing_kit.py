"""The README's "Testing your integration" example, run as an integrator runs it: a pytest
of its own that finds the ``gigco`` fixture through the installed plugin's entry point."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readmes_kit_example_skips_a_seven_day_window_in_seconds(tmp_path: Path) -> None:
    (example,) = re.findall(
        r"<!-- kit-example[^\n]*-->\n```python\n(.*?)```", README.read_text(), re.S
    )
    (tmp_path / "test_example.py").write_text(example)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--durations=0", "--durations-min=0",
         "--rootdir", str(tmp_path), str(tmp_path / "test_example.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    # The seven days took well under a second of the test's own time.
    (call,) = re.findall(r"([\d.]+)s call", result.stdout)
    assert float(call) < 5, result.stdout
