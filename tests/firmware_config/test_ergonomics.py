"""Site files as technicians write them: errors name a device by its id and say in words what
is expected; an engine id with colons and a community that YAML reads as a number are taken
as meant; ``profiles_dir`` adds to the shipped profiles, a same-name one overriding with a
warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from siteconfig import ConfigError, SnmpV2c, SnmpV3, load_site, load_site_text

SITE = """agent_id: a1
site_id: S1
site_kind: nro
devices:
  - driver: snmp
    id: ups-1
    profile: snmp-ups-mib
    host: 10.0.0.1
    auth: {version: v3, user: u, auth_key: 12345678, priv_key: 12345678, engine_id: "%s"}
  - driver: snmp
    id: ups-2
    profile: snmp-ups-mib
    host: 10.0.0.2
    auth: {version: v2c, community: 1234}
traps: {communities: [4321]}
"""


def test_numbers_and_colons_are_taken_as_meant() -> None:
    site = load_site_text(SITE % "80:00:1f:88:80:aa:bb:cc", source="site.yaml")
    v3, v2c = (d.auth for d in site.devices)  # type: ignore[union-attr]
    assert isinstance(v3, SnmpV3) and isinstance(v2c, SnmpV2c)
    assert (v3.engine_id, v3.auth_key, v2c.community) == ("80001f8880aabbcc", "12345678", "1234")
    assert site.traps is not None and site.traps.communities == ["4321"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            SITE % "not-hex",
            "site.yaml: devices[ups-1].auth.engine_id: expected an engine id: 5 to 32 bytes in"
            " hex, e.g. 80001f8880aabbccdd01 (0x and colons allowed); got 'not-hex'",
        ),
        (
            (SITE % "80001f8880aabbcc").replace("host: 10.0.0.2", "host: 10.0.0.2\n    pol_s: 3"),
            "site.yaml: devices[ups-2].pol_s: Extra inputs are not permitted",
        ),
        (
            (SITE % "80001f8880aabbcc").replace("id: ups-2", "id: ups 2"),
            "site.yaml: devices[ups 2].id: expected a name: letters, digits and _ . : - (up to"
            " 128, starting with a letter or a digit); got 'ups 2'",
        ),
    ],
    ids=["engine-id", "unknown-key", "bad-id"],
)
def test_errors_name_the_device_and_say_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_site_text(text, source="site.yaml")
    assert str(err.value) == message


def test_profiles_dir_adds_to_the_shipped_profiles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = tmp_path / "profiles"
    own.mkdir()
    (own / "my-sensor.yaml").write_text(
        "name: my-sensor\nkind: modbus\npoints:\n"
        "  t: {function: 3, address: 0, type: int16, scale: 0.1}\n"
    )
    site = tmp_path / "site.yaml"
    site.write_text(
        "agent_id: a1\nsite_id: S1\nsite_kind: pm\nprofiles_dir: profiles\ndevices:\n"
        "  - {driver: modbus, id: s1, profile: my-sensor, transport: {kind: tcp, host: h}}\n"
        "  - {driver: snmp, id: u1, profile: snmp-ups-mib, host: h,"
        " auth: {version: v2c, community: c}}\n"
    )
    config = load_site(site)
    assert set(config.profiles) == {"my-sensor", "snmp-ups-mib"}  # the shipped one found too
    assert caplog.records == []
    # A copy of a shipped profile changes nothing and says nothing; a different one of the
    # same name overrides it, and says so.
    shipped = Path(__file__).resolve().parents[2] / "firmware_config/profiles/snmp-ups-mib.yaml"
    caplog.set_level(logging.WARNING, logger="siteconfig")
    (own / "snmp-ups-mib.yaml").write_text(shipped.read_text())
    load_site(site)
    assert caplog.records == []
    (own / "snmp-ups-mib.yaml").write_text(
        shipped.read_text().replace("description: Any UPS", "description: Our UPS")
    )
    config = load_site(site)
    assert config.profiles["snmp-ups-mib"].description.startswith("Our UPS")
    assert f"profile snmp-ups-mib: {own / 'snmp-ups-mib.yaml'} overrides the shipped" in caplog.text
    # A profile in neither folder is named with both.
    site.write_text(site.read_text().replace("profile: my-sensor", "profile: nowhere"))
    with pytest.raises(ConfigError) as err:
        load_site(site)
    assert f"devices[s1].profile: no profile nowhere.yaml in {own} or " in str(err.value)
