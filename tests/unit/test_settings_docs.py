"""The docs name only settings that exist, and the README's table is the one the code makes."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from gigco import config
from gigco.broker import QUEUES
from gigco.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
TABLE = re.compile(r"<!-- settings-table[^>]*-->\n(.*?)\n<!-- /settings-table -->", re.S)
# GIGCO_ names the docs mention that are not product settings, and the file that reads each.
READ_ELSEWHERE = {
    "GIGCO_URL": "examples/walkthrough.sh",
    "GIGCO_TEST_DATABASE_URL": "tests/harness/env.py",
    "GIGCO_TEST_REDIS_URL": "tests/harness/env.py",
    "GIGCO_PG_BINDIR": "tests/resilience/services.py",
    "GIGCO_WEBHOOK_SECRET": "README.md",  # the example receiver's own variable
}


def test_the_readmes_settings_table_is_the_generated_one() -> None:
    generated = CliRunner().invoke(main, ["settings", "--markdown"])
    assert generated.exit_code == 0, generated.output
    found = TABLE.search(README.read_text())
    assert found, "README.md has no <!-- settings-table --> … <!-- /settings-table --> section"
    assert found[1] == generated.output.rstrip("\n"), (
        "README.md's settings table is stale; replace it with `gigco settings --markdown`:\n"
        + generated.output
    )


def test_every_variable_the_code_reads_is_documented() -> None:
    read = set(config.variables_read())
    # A variable read only when another is set would escape variables_read(): the source
    # names every variable as a string of its own.
    source = (ROOT / "gigco" / "config.py").read_text()
    assert set(re.findall(r'"(GIGCO_[A-Z0-9_]+)"', source)) <= read
    rows = config.documented()
    assert {name for name, _, _ in rows} == read
    undocumented = [row for row in rows if config.UNDOCUMENTED in row]
    assert undocumented == [], "add each to MEANINGS (and SHOWN_DEFAULTS) in gigco/config.py"


def test_every_gigco_name_in_the_docs_exists() -> None:
    read = set(config.variables_read())
    for doc in DOCS:
        for name in sorted(set(re.findall(r"\bGIGCO_[A-Z0-9_]*[A-Z0-9]\b", doc.read_text()))):
            if name in READ_ELSEWHERE:
                assert name in (ROOT / READ_ELSEWHERE[name]).read_text(), (doc.name, name)
            else:
                assert name in read, f"{doc.relative_to(ROOT)} names {name}, which no code reads"


def test_the_ops_guide_names_every_queue_and_the_cookie_setting() -> None:
    ops = (ROOT / "docs" / "ops.md").read_text()
    (queues,) = re.findall(r"\*\*Queues\*\*: messages waiting in each of (.*?), read on", ops)
    assert set(re.findall(r"`([a-z]+)`", queues)) == set(QUEUES)
    assert "SESSION_COOKIE_SECURE" not in ops
    assert "GIGCO_OPS_SECURE_COOKIE=false" in ops
