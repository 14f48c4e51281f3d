"""Site files: the agent's identity, broker, outbox and devices (each referencing a profile)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from agent.buffer.settings import OutboxSettings
from agent.config.errors import ConfigError
from agent.config.profiles import GpioProfile, Ident, Profile
from agent.link.settings import LinkSettings
from protocol.topics import AGENT_ID_PATTERN

_M = TypeVar("_M", bound=BaseModel)

DEFAULT_PROFILES_DIR = Path(__file__).resolve().parents[2] / "firmware_config" / "profiles"


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


Device = Annotated[GpioDevice | ModbusDevice, Field(discriminator="driver")]


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

    @model_validator(mode="after")
    def _unique_devices(self) -> SiteFile:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"device ids must be unique, repeated: {', '.join(dupes)}")
        return self


class SiteConfig(SiteFile):
    """A validated site file with the profiles it uses, and its hash."""

    profiles: dict[str, Profile] = Field(default_factory=dict)
    config_hash: str = ""

    def profile_of(self, device: Device) -> Profile:
        """The profile a device uses."""
        return self.profiles[device.profile]


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
    profiles_dir = _profiles_dir(site, base_dir)
    loaded: dict[str, Profile] = {}
    texts: dict[str, str] = {}
    for index, device in enumerate(site.devices):
        if device.profile in loaded:
            continue
        if profiles is not None and device.profile in profiles:
            ptext, psource = profiles[device.profile], f"{source} (profile {device.profile})"
        else:
            pfile = profiles_dir / f"{device.profile}.yaml"
            if not pfile.is_file():
                raise ConfigError(source, f"devices[{index}].profile", f"no profile file {pfile}")
            ptext, psource = pfile.read_text(), str(pfile)
        loaded[device.profile] = load_profile_text(ptext, source=psource)
        texts[device.profile] = ptext
    for index, device in enumerate(site.devices):
        _check_device(source, index, device, loaded[device.profile])
    digest = hashlib.sha256(
        json.dumps(
            {
                "site": site.model_dump(mode="json"),
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
        raise ConfigError(source, _path(first["loc"]) or "<root>", first["msg"]) from err


def _check_device(source: str, index: int, device: Device, profile: Profile) -> None:
    if profile.kind != device.driver:
        raise ConfigError(
            source,
            f"devices[{index}].profile",
            f"{profile.name} is a {profile.kind} profile, not {device.driver}",
        )
    if isinstance(device, GpioDevice) and isinstance(profile, GpioProfile):
        missing = sorted(set(profile.points) - set(device.pins))
        unknown = sorted(set(device.pins) - set(profile.points))
        if missing:
            raise ConfigError(
                source, f"devices[{index}].pins", f"no pin for point(s) {', '.join(missing)}"
            )
        if unknown:
            raise ConfigError(
                source,
                f"devices[{index}].pins",
                f"point(s) {', '.join(unknown)} not in profile {profile.name}",
            )


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
        path = _path(first["loc"])
        raise ConfigError(source, path or "<root>", first["msg"]) from err


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
