"""Every configuration file the project ships loads and validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.alarms.rules import load_rules
from collector.inventory.files import read_inventory
from collector.notifications.settings import load_notification_settings
from collector.sla.contracts import load_contracts
from collector.tickets.criticality import load_criticality_map
from siteconfig import load_profile, load_site

ROOT = Path(__file__).resolve().parents[2]
SITES = sorted((ROOT / "firmware_config" / "sites").rglob("*.yaml"))
PROFILES = sorted((ROOT / "firmware_config" / "profiles").glob("*.yaml"))
INVENTORY = sorted((ROOT / "collector_data" / "inventory").glob("*.yaml"))


@pytest.mark.parametrize("path", SITES, ids=[p.name for p in SITES])
def test_site_files(path: Path) -> None:
    assert load_site(path).config_hash.startswith("sha256:")


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_profiles(path: Path) -> None:
    assert load_profile(path).points


@pytest.mark.parametrize("path", INVENTORY, ids=[p.name for p in INVENTORY])
def test_inventory(path: Path) -> None:
    assert read_inventory(path).services


def test_collector_data_files() -> None:
    contracts = load_contracts()
    assert {"curative-24x7", "sav-working-hours", "urgent-desk"} <= set(contracts.contracts)
    for contract in contracts.contracts.values():
        contract.calendar_obj()  # every calendar named is one that exists
    assert load_criticality_map().for_alarm(alarm_type="fire", severity="minor") == "critical"
    assert load_rules().causes_of("on_battery") == ["mains_lost"]
    assert load_rules().causes_of("fire") == []
    assert "opened" in load_notification_settings().events


def test_something_is_shipped() -> None:
    assert len(SITES) >= 5 and len(PROFILES) >= 3 and INVENTORY
