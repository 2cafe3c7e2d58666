"""Version 1 of the lifecycle policies is the defaults, exactly as the code writes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gigco
from gigco.config import Settings
from gigco.lifecycle import policies

MIGRATION = Path(gigco.__file__).parent / "migrations" / "versions" / "0013_lifecycle_policies.py"


def test_a_process_on_the_default_settings_finds_the_migrations_version_one() -> None:
    spec = importlib.util.spec_from_file_location("migration_0011", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    rates = {"plumbing": 4500, "cleaning": 3000}
    values, digest = migration.version_one(rates)
    defaults = Settings(database_url="sqlite://", broker_url="memory://")
    ours = policies.Policy.from_settings(defaults, rates).values()
    assert ours == values
    assert policies.values_hash(ours) == digest
