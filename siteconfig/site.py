"""Site files: the agent's identity, broker, outbox and devices (each referencing a profile)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from protocol import Severity
from protocol.topics import AGENT_ID_PATTERN
from siteconfig.errors import ConfigError
from siteconfig.mqtt import LinkSettings
from siteconfig.outbox import OutboxSettings
from siteconfig.profiles import GpioProfile, Ident, Profile

_M = TypeVar("_M", bound=BaseModel)

log = logging.getLogger(__name__)
DEFAULT_PROFILES_DIR = Path(__file__).resolve().parents[1] / "firmware_config" / "profiles"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpioDevice(_Strict):
    """Contacts on GPIO inputs: profile point -> BCM pin number."""

    driver: Literal["gpio"]
    id: Ident
    profile: Ident
    pins: dict[Ident, int] = Field(min_length=1)
    poll_ms: int = Field(default=50, ge=5, le=10_000)


class ModbusTcp(_Strict):
    """Modbus TCP transport."""

    kind: Literal["tcp"]
    host: str
    port: int = Field(default=502, ge=1, le=65535)


class ModbusRtu(_Strict):
    """Modbus RTU over a serial line."""

    kind: Literal["rtu"]
    port: str  # e.g. /dev/ttyUSB0
    baudrate: int = Field(default=19200, ge=1200, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1


class ModbusDevice(_Strict):
    """An equipment read over Modbus, with its own timeout, retries and backoff."""

    driver: Literal["modbus"]
    id: Ident
    profile: Ident
    transport: ModbusTcp | ModbusRtu = Field(discriminator="kind")
    unit_id: int = Field(default=1, ge=0, le=247)
    poll_s: float = Field(default=10.0, gt=0)
    timeout_s: float = Field(default=2.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10)
    # After a failed poll, wait up to this long (doubling) before the next attempt.
    backoff_max_s: float = Field(default=60.0, gt=0)
    # Failed polls in a row that raise the device's communication-failure alarm.
    comm_failure_after: int = Field(default=3, ge=1)


def _read_secrets(data: Any, *names: str) -> Any:
    """Fill ``<name>`` from ``<name>_file`` (mode 0600), so keys can stay out of site files."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name in names:
        path = out.get(f"{name}_file")
        if path is None:
            continue
        # The file wins over an inline value: a validated config dumped and validated again
        # carries both.
        try:
            out[name] = Path(path).read_text().strip()
        except OSError as err:
            raise ValueError(f"cannot read {name}_file {path}: {err.strerror or err}") from err
    return out


class SnmpV2c(_Strict):
    """SNMP v2c: a community string."""

    version: Literal["v2c"]
    community: str = Field(min_length=1, max_length=64)
    community_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return _read_secrets(_as_text(data, "community"), "community")


_ENGINE_ID = r"^(0x)?([0-9A-Fa-f]{2}){5,32}$"


def _engine_id(data: Any) -> Any:
    """An engine id as people write it (``80:00:1f:88:...``, ``0x8000 1F88``): the hex kept."""
    if isinstance(data, dict) and isinstance(data.get("engine_id"), str):
        data = {**data, "engine_id": data["engine_id"].replace(":", "").replace(" ", "")}
    return data


def _as_text(data: Any, *names: str) -> Any:
    """YAML reads ``community: 1234`` as a number: a community is text, whatever it looks like."""
    if not isinstance(data, dict):
        return data
    return {
        k: str(v) if k in names and isinstance(v, int | float) and not isinstance(v, bool) else v
        for k, v in data.items()
    }


class SnmpV3(_Strict):
    """SNMP v3 USM, authPriv with SHA and AES-128."""

    version: Literal["v3"]
    user: str = Field(min_length=1, max_length=32)
    auth_protocol: Literal["SHA"] = "SHA"
    auth_key: str = Field(min_length=8)
    priv_protocol: Literal["AES"] = "AES"
    priv_key: str = Field(min_length=8)
    auth_key_file: Path | None = None
    priv_key_file: Path | None = None
    # The authoritative engine id of this device, as hex, when it sends v3 traps.
    engine_id: str | None = Field(default=None, pattern=_ENGINE_ID)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        data = _as_text(data, "user", "auth_key", "priv_key", "engine_id")
        return _engine_id(_read_secrets(data, "auth_key", "priv_key"))

    @model_validator(mode="after")
    def _can_encrypt(self) -> SnmpV3:
        _require_cryptography()
        return self


def _require_cryptography() -> None:
    # pysnmp does not depend on it, and without it authPriv traffic is dropped without a word:
    # refused here, where a bad site file (or a hot reload adding v3) is refused. Looked up,
    # not imported: a v2c-only box never pays for loading it.
    if importlib.util.find_spec("cryptography") is None:
        raise ValueError(
            "SNMPv3 authPriv needs the 'cryptography' package, which is not installed"
            " (pip install 'shelterwatch[agent]')"
        )


class SnmpDevice(_Strict):
    """An equipment polled over SNMP (GET, GETBULK for tables), with timeout and backoff."""

    driver: Literal["snmp"]
    id: Ident
    profile: Ident
    host: str
    port: int = Field(default=161, ge=1, le=65535)
    auth: SnmpV2c | SnmpV3 = Field(discriminator="version")
    poll_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=2.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10)
    backoff_max_s: float = Field(default=120.0, gt=0)
    comm_failure_after: int = Field(default=3, ge=1)
    max_repetitions: int = Field(default=10, ge=1, le=100)


Device = Annotated[GpioDevice | ModbusDevice | SnmpDevice, Field(discriminator="driver")]


class TrapUser(_Strict):
    """A v3 trap source: its user, keys and authoritative engine id."""

    user: str = Field(min_length=1, max_length=32)
    # The minimum level accepted from this user: a trap at a lower one is rejected.
    security_level: Literal["authPriv", "authNoPriv"] = "authPriv"
    auth_key: str = Field(min_length=8)
    priv_key: str | None = Field(default=None, min_length=8)
    auth_key_file: Path | None = None
    priv_key_file: Path | None = None
    engine_id: str = Field(pattern=_ENGINE_ID)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        data = _as_text(data, "user", "auth_key", "priv_key", "engine_id")
        return _engine_id(_read_secrets(data, "auth_key", "priv_key"))

    @model_validator(mode="after")
    def _can_encrypt(self) -> TrapUser:
        if self.security_level == "authPriv" and self.priv_key is None:
            raise ValueError("an authPriv user needs priv_key (or priv_key_file)")
        _require_cryptography()
        return self


class TrapListener(_Strict):
    """Where SNMP traps and informs are received, and whom they are accepted from."""

    @model_validator(mode="before")
    @classmethod
    def _communities_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("communities"), list):
            data = {
                **data,
                "communities": [_as_text({"c": c}, "c")["c"] for c in data["communities"]],
            }
        return data

    bind: str = "0.0.0.0"
    port: int = Field(default=162, ge=1, le=65535)
    communities: list[str] = Field(default_factory=list)
    users: list[TrapUser] = Field(default_factory=list)
    # Sender address -> device id, for sources whose address is not a polled device's host.
    sources: dict[str, Ident] = Field(default_factory=dict)


class SyslogPattern(_Strict):
    """A regular expression on a syslog message that raises or clears an alarm."""

    regex: str
    equipment: Ident
    point: Ident
    alarm_type: Ident
    severity: Severity
    transition: Literal["raised", "cleared"]
    # Only messages from this host: the syslog HOSTNAME field, or the sender's IP address
    # (for lines that name no host), when given.
    host: str | None = None
    # Only messages whose tag matches this regular expression (searched in the program name,
    # "sshd", or the Cisco tag, "%LINK-3-UPDOWN"), when given.
    tag: str | None = None
    # A raised alarm with no clearing pattern clears this long after the last line raising it.
    expire_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _compiles(self) -> SyslogPattern:
        for name, regex in (("regex", self.regex), ("tag", self.tag)):
            if regex is None:
                continue
            try:
                re.compile(regex)
            except re.error as err:
                raise ValueError(f"{name} does not compile: {err}") from err
        return self


class SyslogListener(_Strict):
    """A UDP syslog receiver (RFC 3164 and 5424)."""

    bind: str = "0.0.0.0"
    port: int = Field(default=514, ge=1, le=65535)
    patterns: list[SyslogPattern] = Field(min_length=1)


class CollectorApi(_Strict):
    """Where the box reaches the collector's API (for technicians' commands on site)."""

    url: AnyHttpUrl


class SiteFile(_Strict):
    """What a site file may contain."""

    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    site_id: Ident
    site_kind: Literal["nro", "pm"]
    region: str = "unknown"
    parent_nro: Ident | None = None
    profiles_dir: Path | None = None
    mqtt: LinkSettings = LinkSettings()
    outbox: OutboxSettings = OutboxSettings()
    devices: list[Device] = Field(default_factory=list)
    traps: TrapListener | None = None
    syslog: SyslogListener | None = None
    collector_api: CollectorApi | None = None

    @model_validator(mode="after")
    def _unique_devices(self) -> SiteFile:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"device ids must be unique, repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _trap_sources(self) -> SiteFile:
        if self.traps is None:
            return self
        snmp = {d.id for d in self.devices if isinstance(d, SnmpDevice)}
        unknown = sorted(set(self.traps.sources.values()) - snmp)
        if unknown:
            raise ValueError(f"traps.sources name no snmp device: {', '.join(unknown)}")
        engines = [u.engine_id.lower().removeprefix("0x") for u in self.traps.users]
        if len(set(engines)) != len(engines):
            raise ValueError("traps.users: each engine_id once")
        return self


class SiteConfig(SiteFile):
    """A validated site file with the profiles it uses, and its hash."""

    profiles: dict[str, Profile] = Field(default_factory=dict)
    config_hash: str = ""

    def profile_of(self, device: Device) -> Profile:
        """The profile a device uses."""
        return self.profiles[device.profile]

    @model_validator(mode="after")
    def _every_alarm_clears(self) -> SiteConfig:
        problem = _uncleared_pattern(self, self.profiles)
        if problem is not None:
            raise ValueError(f"syslog.{problem[0]}: {problem[1]}")
        return self


def _uncleared_pattern(site: SiteFile, profiles: dict[str, Profile]) -> tuple[str, str] | None:
    """The first syslog pattern raising an alarm nothing clears (no clearing pattern, no
    ``expire_s``, no polled point of that device with an alarm of that type), as (path,
    reason); None when every alarm has a way to clear."""
    if site.syslog is None:
        return None
    patterns = site.syslog.patterns
    cleared = {(p.equipment, p.point, p.alarm_type) for p in patterns if p.transition == "cleared"}
    devices = {d.id: d for d in site.devices}
    for index, p in enumerate(patterns):
        if p.transition != "raised" or p.expire_s is not None:
            continue
        if (p.equipment, p.point, p.alarm_type) in cleared:
            continue
        device = devices.get(p.equipment)
        profile = profiles.get(device.profile) if device is not None else None
        polled = profile.points.get(p.point) if profile is not None else None
        alarm = getattr(polled, "alarm", None)
        if alarm is not None and alarm.alarm_type == p.alarm_type:
            continue  # the poll of that point reconciles it
        return (
            f"patterns[{index}]",
            f"raises {p.alarm_type} on {p.equipment} {p.point}, which nothing clears: add a"
            " pattern with transition: cleared, or expire_s",
        )
    return None


def load_site(path: Path) -> SiteConfig:
    """Load and validate a site file and the profiles it references."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(str(path), "<file>", err.strerror or str(err)) from err
    site_dir = path.resolve().parent
    return load_site_text(text, source=str(path), base_dir=site_dir)


def load_site_text(
    text: str,
    *,
    source: str,
    base_dir: Path | None = None,
    profiles: dict[str, str] | None = None,
) -> SiteConfig:
    """Validate site YAML; profiles come from ``profiles`` (YAML texts by name) or from disk."""
    raw = _yaml(text, source)
    site = _validate(SiteFile, raw, source)
    # The site's own profiles first, then the shipped ones: profiles_dir adds to them.
    folders = [_profiles_dir(site, base_dir), DEFAULT_PROFILES_DIR]
    loaded: dict[str, Profile] = {}
    texts: dict[str, str] = {}
    for device in site.devices:
        if device.profile in loaded:
            continue
        if profiles is not None and device.profile in profiles:
            ptext, psource = profiles[device.profile], f"{source} (profile {device.profile})"
        else:
            pfile = _profile_file(device.profile, folders)
            if pfile is None:
                where = " or ".join(str(f) for f in dict.fromkeys(folders))
                raise ConfigError(
                    source,
                    f"devices[{device.id}].profile",
                    f"no profile {device.profile}.yaml in {where}",
                )
            ptext, psource = pfile.read_text(), str(pfile)
        loaded[device.profile] = load_profile_text(ptext, source=psource)
        texts[device.profile] = ptext
    for index, device in enumerate(site.devices):
        _check_device(source, index, device, loaded[device.profile])
    problem = _uncleared_pattern(site, loaded)
    if problem is not None:
        raise ConfigError(source, f"syslog.{problem[0]}", problem[1])
    digest = hashlib.sha256(
        json.dumps(
            {
                # Unset, the new field stays out: adding it must not change existing hashes.
                "site": site.model_dump(
                    mode="json", exclude={"collector_api"} if site.collector_api is None else None
                ),
                "profiles": {k: texts[k] for k in sorted(texts)},
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    return SiteConfig(**site.model_dump(), profiles=loaded, config_hash=f"sha256:{digest[:40]}")


def load_profile(path: Path) -> Profile:
    """Load and validate one profile file."""
    try:
        return load_profile_text(path.read_text(), source=str(path))
    except OSError as err:
        raise ConfigError(str(path), "<file>", err.strerror or str(err)) from err


_PROFILE: TypeAdapter[Profile] = TypeAdapter(Profile)


def load_profile_text(text: str, *, source: str) -> Profile:
    """Validate profile YAML."""
    raw = _yaml(text, source)
    try:
        return _PROFILE.validate_python(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(source, _path(first["loc"], raw) or "<root>", _words(first)) from err


def _check_device(source: str, index: int, device: Device, profile: Profile) -> None:
    if profile.kind != device.driver:
        raise ConfigError(
            source,
            f"devices[{device.id}].profile",
            f"{profile.name} is a {profile.kind} profile, not {device.driver}",
        )
    if isinstance(device, GpioDevice) and isinstance(profile, GpioProfile):
        missing = sorted(set(profile.points) - set(device.pins))
        unknown = sorted(set(device.pins) - set(profile.points))
        if missing:
            raise ConfigError(
                source, f"devices[{device.id}].pins", f"no pin for point(s) {', '.join(missing)}"
            )
        if unknown:
            raise ConfigError(
                source,
                f"devices[{device.id}].pins",
                f"point(s) {', '.join(unknown)} not in profile {profile.name}",
            )


def _profile_file(name: str, folders: list[Path]) -> Path | None:
    """The first folder's ``<name>.yaml``; a site profile overriding a different shipped one
    is logged."""
    found = [f / f"{name}.yaml" for f in dict.fromkeys(folders) if (f / f"{name}.yaml").is_file()]
    if len(found) > 1 and found[0].read_text() != found[1].read_text():
        # A copy of the shipped profile overrides nothing: said only when they differ.
        log.warning("profile %s: %s overrides the shipped %s (same name)", name, found[0], found[1])
    return found[0] if found else None


def _profiles_dir(site: SiteFile, base_dir: Path | None) -> Path:
    if site.profiles_dir is None:
        return DEFAULT_PROFILES_DIR
    if site.profiles_dir.is_absolute() or base_dir is None:
        return site.profiles_dir
    return (base_dir / site.profiles_dir).resolve()


def _yaml(text: str, source: str) -> Any:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<yaml>"
        raise ConfigError(source, where, f"not valid YAML: {getattr(err, 'problem', err)}") from err
    if not isinstance(raw, dict):
        raise ConfigError(source, "<root>", "expected a mapping at the top level")
    return raw


def _validate(model: type[_M], raw: Any, source: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        path = _path(first["loc"], raw)
        raise ConfigError(source, path or "<root>", _words(first)) from err


# What a value must look like, in words, for the patterns a site or profile uses.
_PATTERN_WORDS = {
    _ENGINE_ID: "an engine id: 5 to 32 bytes in hex, e.g. 80001f8880aabbccdd01"
    " (0x and colons allowed)",
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$": "a name: letters, digits and _ . : - (up to 128,"
    " starting with a letter or a digit)",
    r"^1(\.(0|[1-9][0-9]{0,9})){1,127}$": "a numeric OID such as 1.3.6.1.2.1.33.1.2.1.0",
    AGENT_ID_PATTERN: "an agent id: letters, digits, - and _",
}


def _words(error: Any) -> str:
    """Pydantic's message, with a pattern said in words rather than as a regex."""
    if error.get("type") == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        expected = _PATTERN_WORDS.get(pattern)
        got = error.get("input")
        if expected is not None:
            return f"expected {expected}; got {got!r}"
    return str(error["msg"])


def _path(loc: tuple[Any, ...], raw: Any = None) -> str:
    """``devices[ups-1].auth.engine_id``: a list entry with an ``id`` is named by it, and the
    tags pydantic adds for a discriminated union (``snmp``, ``v3``) are left out."""
    out = ""
    node = raw
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and part not in node and (not last or _is_tag(node, part)):
            continue  # the union member pydantic tried (snmp, v3, ThresholdAlarm), no key
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("id") if isinstance(item, dict) else None
            out += f"[{name}]" if isinstance(name, str) and name else f"[{part}]"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _is_tag(node: dict[str, Any], part: object) -> bool:
    return any(str(node.get(k)) == part for k in ("driver", "version", "kind") if k in node)
