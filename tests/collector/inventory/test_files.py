"""Inventory files and site bodies: two entries with one id are refused by name and position,
never half-loaded nor silently collapsed to the last."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.inventory.files import InventoryError, read_inventory

SITE = "  - {site_id: NRO-A, kind: nro}\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "sites:\n  - site_id: NRO-A\n    kind: nro\n    equipment:\n"
            "      - {equipment_id: ups-1}\n      - {equipment_id: ups-2}\n"
            "      - {equipment_id: ups-1}\n",
            "sites.0: Value error, equipment.2: duplicate equipment id 'ups-1' "
            "(already equipment.0)",
        ),
        (
            f"sites:\n{SITE}  - {{site_id: NRO-B, kind: nro}}\n{SITE}",
            "duplicate site id 'NRO-A' (already sites.0)",
        ),
        (
            "clients:\n  - {client_id: acme, name: A}\n  - {client_id: acme, name: B}\n",
            "clients.1: duplicate client id 'acme'",
        ),
        (
            f"sites:\n{SITE}services:\n"
            "  - {client_id: acme, site_id: NRO-A, hosting_ref: HEB00001}\n"
            "  - {client_id: acme, site_id: NRO-A, hosting_ref: HEB00001}\n",
            "services.1: duplicate hosting_ref 'HEB00001'",
        ),
        (
            f"sites:\n{SITE}  - {{site_id: NRO-B, kind: nro}}\nagents:\n"
            "  - {agent_id: box-1, site_id: NRO-A}\n  - {agent_id: box-1, site_id: NRO-B}\n",
            "agents.1: duplicate agent id 'box-1' (already agents.0)",
        ),
    ],
    ids=["equipment", "site", "client", "service", "agent"],
)
def test_a_file_with_one_id_twice_is_refused_naming_both_places(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(body)
    with pytest.raises(InventoryError) as refused:
        read_inventory(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert expected in str(refused.value)
