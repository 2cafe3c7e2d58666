"""The previous release, built from this repository's history for the rolling-deploy tests.

``releases/previous.txt`` names it (tag and commit). Its tree is checked out with ``git
worktree add`` into a temporary directory and given a virtualenv of its own. When this run's
environment already satisfies every dependency the release declares (the usual case: a
release apart), that virtualenv borrows them (a ``.pth`` naming the tree, then this
environment's site-packages, whose own ``.pth`` hooks — our editable install among them —
are not run); otherwise the release is installed into it with pip. Its processes run from
that tree, so they import its code and its ``celeryconfig.py``, never ours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
NAMED = REPO / "releases" / "previous.txt"


@dataclass(frozen=True)
class PreviousRelease:
    """A built previous release: its tag, its checked-out tree and its virtualenv's python."""

    tag: str
    commit: str
    tree: Path
    python: Path

    def worker_argv(self, name: str) -> list[str]:
        """Its ``celery worker`` (threads, all queues), as the topology runs ours."""
        return [
            str(self.python), "-m", "celery", "-A", "gigco.tasks", "worker",
            "--loglevel", "INFO", "--without-mingle", "--without-gossip",
            "--pool", "threads", "--concurrency", "4", "-n", f"{name}@%h",
        ]  # fmt: skip

    def beat_argv(self, schedule: Path) -> list[str]:
        """Its ``celery beat``."""
        return [
            str(self.python), "-m", "celery", "-A", "gigco.tasks", "beat",
            "--loglevel", "INFO", "--schedule", str(schedule),
        ]  # fmt: skip

    def gunicorn_argv(self, port: int) -> list[str]:
        """Its API under gunicorn."""
        return [
            str(self.python), "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2",
            "--access-logfile", "-", "gigco.web:create_app()",
        ]  # fmt: skip


def named() -> tuple[str, str]:
    """The previous release's tag and commit, from ``releases/previous.txt``."""
    tag, commit = NAMED.read_text().split()[:2]
    return tag, commit


def unmet_requirements(tree: Path) -> list[str]:
    """The dependencies ``tree``'s ``pyproject.toml`` declares that this environment lacks
    (absent, or at a version outside the range)."""
    declared = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["dependencies"]
    unmet = []
    for line in declared:
        wanted = Requirement(line)
        try:
            have = metadata.version(wanted.name)
        except metadata.PackageNotFoundError:
            unmet.append(line)
            continue
        if not wanted.specifier.contains(have, prereleases=True):
            unmet.append(f"{line} (have {have})")
    return unmet


def _git(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@contextmanager
def built(base: Path) -> Iterator[PreviousRelease]:
    """Check out and install the previous release under ``base``; remove the worktree after.

    Skips (saying why) only where the history cannot be had: no git, or a clone without the
    commit (a shallow checkout needs ``git fetch --unshallow``); with
    ``GIGCO_TEST_REQUIRE_PREVIOUS_RELEASE`` set (CI) it fails there instead."""
    tag, commit = named()
    # CI (.ci/run) requires it: there the test fails instead of skipping.
    give_up = pytest.fail if os.environ.get("GIGCO_TEST_REQUIRE_PREVIOUS_RELEASE") else pytest.skip
    if shutil.which("git") is None:
        give_up("git not found: the previous release is built from the repository's history")
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        give_up(f"{tag} ({commit[:12]}) is not in this clone's history (git fetch --unshallow)")
    tree, venv = base / "tree", base / "venv"
    added = _git("worktree", "add", "--detach", str(tree), commit)
    assert added.returncode == 0, added.stderr
    try:
        python = venv / "bin" / "python"
        if unmet_requirements(tree) == []:
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
            )
            paths = {"base": str(venv), "platbase": str(venv)}
            own = Path(sysconfig.get_path("purelib", vars=paths))
            ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
            (own / "gigco_previous_release.pth").write_text("\n".join([str(tree), *ours]) + "\n")
        else:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", str(tree)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert installed.returncode == 0, installed.stderr[-3000:]
        yield PreviousRelease(tag, commit, tree, python)
    finally:
        _git("worktree", "remove", "--force", str(tree))
        _git("worktree", "prune")
