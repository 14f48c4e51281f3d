"""Enrolment: broker clients (mosquitto's dynamic-security plugin), ack keys, site skeletons.

Two moments (docs/deployment-pi.md):

- **before the broker first starts**, ``enrol_collector`` writes the broker's configuration
  (``shelterwatch.conf``, to include) and the plugin's initial state (``dynamic-security.json``
  beside it) holding the enrolment admin and the collector instances, and creates the
  collectors' ack master secret;
- **from then on** the plugin owns its state file (it keeps the state in memory and rewrites
  the file itself), so agents, further collector instances and password rotations go through
  the running broker's control topic, as the admin (``control.DynsecControl``): they take
  effect at once, without a restart.

Everything that can be checked is checked before anything is written, so a refusal changes
nothing; secrets are written 0600.
"""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from collector.enrolment import dynsec
from collector.enrolment.control import DynsecControl
from collector.enrolment.errors import AlreadyEnrolled, EnrolmentError, NotEnrolled, ReservedId
from collector.enrolment.skeleton import SiteSkeleton, site_yaml
from protocol.acksig import derive_ack_key, new_secret, read_key_file
from protocol.topics import AGENT_ID_PATTERN, valid_agent_id

# In an agent's folder.
PASSWORD_FILE = "mqtt-password"
ACK_KEY_FILE = "ack-key"
SITE_FILE = "site.yaml"
# In the collectors' folder.
ADMIN_PASSWORD_FILE = "broker-admin-password"
ACK_SECRET_FILE = "ack-secret"
BROKER_USER = "mosquitto"


def collector_password_file(instance_id: str) -> str:
    """File name of one collector instance's broker password."""
    return f"{dynsec.collector_user(instance_id)}-{PASSWORD_FILE}"


@dataclass(frozen=True, slots=True)
class BrokerAccess:
    """Where enrolment reaches the running broker (a listener the admin may use)."""

    host: str = "127.0.0.1"
    port: int = 1883


@dataclass(slots=True)
class Enrolment:
    """What an enrolment did, and what the operator still has to do."""

    usernames: list[str]
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def enrol_collector(
    *,
    instances: list[str],
    out_dir: Path,
    broker_dir: Path,
    admin: BrokerAccess = BrokerAccess(),
    plugin: Path | None = None,
    rotate: bool = False,
    broker_user: str = BROKER_USER,
) -> Enrolment:
    """Broker clients for collector instances; the broker's configuration and initial state
    when it has none yet; the ack master secret when there is none."""
    _check_instances(instances)
    state_path = broker_dir / dynsec.STATE_FILE
    result = Enrolment(usernames=[dynsec.collector_user(i) for i in instances])
    if _exists(state_path):
        admin_password = _read_secret(out_dir / ADMIN_PASSWORD_FILE, "the broker admin's password")
        _enrol_instances_live(instances, out_dir, admin, admin_password, rotate, result)
        _ensure_ack_secret(out_dir, result)
        return result
    if rotate:
        raise NotEnrolled(
            f"{state_path} does not exist: the broker has no clients to rotate yet "
            "(run without --rotate to create its configuration)"
        )
    plugin = plugin or dynsec.find_plugin()
    if plugin is None:
        raise EnrolmentError(
            "mosquitto's dynamic-security plugin is not installed where packages put it: "
            "give its path with --plugin"
        )
    passwords = {i: dynsec.new_password() for i in instances}
    admin_password = dynsec.new_password()
    state = dynsec.initial_state(admin_password=admin_password, collectors=passwords)
    owner = _broker_owner(broker_user)
    _make_dir(out_dir)
    _ensure_ack_secret(out_dir, result)
    _write_secret_file(out_dir / ADMIN_PASSWORD_FILE, admin_password, result)
    for instance, password in passwords.items():
        _write_secret_file(out_dir / collector_password_file(instance), password, result)
    _make_dir(broker_dir, owner=owner)
    conf = broker_dir / dynsec.CONF_FILE
    # The state is the plugin's to rewrite (0600, the broker's user); the configuration is
    # only read, by the broker's group after it drops privileges (root:mosquitto 0640).
    _write_file(state_path, json.dumps(state, indent=1) + "\n", mode=0o600, owner=owner)
    text = dynsec.broker_conf(state_file=state_path.resolve(), plugin=plugin)
    _write_file(conf, text, mode=0o640, owner=None if owner is None else (0, owner[1]))
    result.written += [state_path, conf]
    result.notes += [
        f"add `include_dir {broker_dir.resolve()}` to mosquitto.conf, then (re)start mosquitto",
        "run each instance with --instance-id <id> --broker-user collector-<id> "
        f"--broker-password-file {out_dir}/collector-<id>-{PASSWORD_FILE} "
        f"--ack-secret-file {out_dir / ACK_SECRET_FILE}",
    ]
    if owner is None:
        result.notes.append(f"the broker's user must own {broker_dir} (its plugin rewrites it)")
    return result


def enrol_agent(
    *,
    site: SiteSkeleton,
    out_dir: Path,
    collector_dir: Path,
    admin: BrokerAccess = BrokerAccess(),
    rotate: bool = False,
) -> Enrolment:
    """Create an agent's broker client on the running broker, its ack key and its site file."""
    agent_id = site.agent_id
    if not valid_agent_id(agent_id):
        raise EnrolmentError(f"invalid agent id {agent_id!r}: must match {AGENT_ID_PATTERN}")
    reserved = dynsec.reserved_agent_id(agent_id)
    if reserved is not None:
        raise ReservedId(f"{reserved}: nothing written")
    site_text = site_yaml(site)
    secret = _read_key(collector_dir / ACK_SECRET_FILE)
    admin_password = _read_secret(
        collector_dir / ADMIN_PASSWORD_FILE, "the broker admin's password"
    )
    password_path = out_dir / PASSWORD_FILE
    if password_path.exists() and not rotate:
        raise AlreadyEnrolled(
            f"{agent_id} is already enrolled ({password_path}): nothing written; "
            "use --rotate to replace its password"
        )
    password = dynsec.new_password()
    with DynsecControl(admin.host, admin.port, password=admin_password) as ctl:
        (found,) = ctl.run([dynsec.get_client(agent_id)])
        exists = "error" not in found
        if exists and not rotate:
            raise AlreadyEnrolled(
                f"{agent_id} is already enrolled on the broker: nothing written; "
                "use --rotate to replace its password"
            )
        if rotate and not exists:
            raise NotEnrolled(f"{agent_id} is not a client of the broker: nothing to rotate")
        if exists and not dynsec.is_agent_client(found.get("data", {}).get("client", {}), agent_id):
            raise EnrolmentError(
                f"{agent_id} is a broker client that enrolment did not make "
                "(not bound to its client id and role): left as it is"
            )
        commands = (
            [dynsec.set_password(agent_id, password)]
            if rotate
            else dynsec.create_agent(agent_id, password)
        )
        answers = ctl.run(commands)
    failed = [
        f"{a['command']}: {a['error']}"
        for a in answers
        if "error" in a and not (a["command"] == "createRole" and "exists" in a["error"])
    ]
    if failed:
        raise EnrolmentError(f"the broker refused {agent_id}: {'; '.join(failed)}")
    result = Enrolment(usernames=[agent_id])
    try:
        _make_dir(out_dir)
        _write_secret_file(password_path, password, result)
        _write_secret_file(out_dir / ACK_KEY_FILE, derive_ack_key(secret, agent_id).hex(), result)
    except EnrolmentError as err:
        raise EnrolmentError(
            f"{err} (the broker already has {agent_id}'s new password: fix this and run "
            "again with --rotate)"
        ) from err
    site_path = out_dir / SITE_FILE
    if site_path.exists():
        result.notes.append(f"{site_path} kept as it is (it may hold the site's devices)")
    else:
        _write_file(site_path, site_text, mode=0o644)
        result.written.append(site_path)
    result.notes.append("the broker took it at once: no restart, no reload")
    return result


def _enrol_instances_live(
    instances: list[str],
    out_dir: Path,
    admin: BrokerAccess,
    admin_password: str,
    rotate: bool,
    result: Enrolment,
) -> None:
    users = [dynsec.collector_user(i) for i in instances]
    passwords = {i: dynsec.new_password() for i in instances}
    with DynsecControl(admin.host, admin.port, password=admin_password) as ctl:
        found = ctl.run([dynsec.get_client(u) for u in users])
        present = [u for u, answer in zip(users, found, strict=True) if "error" not in answer]
        if present and not rotate:
            raise AlreadyEnrolled(
                f"{', '.join(present)} already enrolled on the broker: nothing written; "
                "use --rotate to replace their passwords"
            )
        absent = sorted(set(users) - set(present))
        if rotate and absent:
            raise NotEnrolled(f"{', '.join(absent)} not clients of the broker: nothing to rotate")
        answers = ctl.run(
            [
                dynsec.set_password(dynsec.collector_user(i), p)
                if rotate
                else dynsec.create_collector(i, p)
                for i, p in passwords.items()
            ]
        )
    failed = []
    for (instance, password), answer in zip(passwords.items(), answers, strict=True):
        if "error" in answer:
            failed.append(f"{dynsec.collector_user(instance)}: {answer['error']}")
        else:
            _write_secret_file(out_dir / collector_password_file(instance), password, result)
    if failed:
        raise EnrolmentError(f"the broker refused {'; '.join(failed)}")
    result.notes.append("the broker took them at once: no restart, no reload")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as err:  # a folder only the broker's user may enter
        raise EnrolmentError(f"cannot look at {path}: {err.strerror or err} (run as root)") from err


def _check_instances(instances: list[str]) -> None:
    if not instances:
        raise EnrolmentError("give at least one collector instance id (--instance c1)")
    bad = [i for i in instances if not dynsec.valid_instance_id(i)]
    if bad:
        raise EnrolmentError(
            f"invalid instance id {bad[0]!r}: must match {dynsec.INSTANCE_ID_PATTERN}"
        )
    if len(set(instances)) != len(instances):
        raise EnrolmentError("each instance id once: scale-out instances never share one")


def _ensure_ack_secret(out_dir: Path, result: Enrolment) -> None:
    """Create the collectors' master secret once; never replace it (every agent's key is
    derived from it)."""
    path = out_dir / ACK_SECRET_FILE
    if path.exists():
        _read_key(path)
        result.notes.append(f"{path} kept (every agent's ack key derives from it)")
        return
    _write_secret_file(path, new_secret(), result)


def _read_key(path: Path) -> bytes:
    try:
        return read_key_file(path)
    except ValueError as err:
        raise EnrolmentError(
            f"the collectors' ack secret: {err} (enrol-collector writes it)"
        ) from err


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text().strip()
    except OSError as err:
        raise EnrolmentError(
            f"cannot read {what} in {path} ({err.strerror or err}): enrol-collector writes it there"
        ) from err
    if not text:
        raise EnrolmentError(f"{path} is empty: {what} expected")
    return text


def _broker_owner(user: str) -> tuple[int, int] | None:
    """(uid, gid) of the broker's user when it exists and we may hand files to it."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _make_dir(path: Path, *, owner: tuple[int, int] | None = None) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if owner is not None:
            os.chown(path, *owner)
    except OSError as err:
        raise EnrolmentError(f"cannot create {path}: {err.strerror or err}") from err


def _write_secret_file(path: Path, secret: str, result: Enrolment) -> None:
    _write_file(path, secret + "\n", mode=0o600)
    result.written.append(path)


def _write_file(path: Path, text: str, *, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Write ``text`` with ``mode`` from the first byte (no moment world-readable)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), mode)  # O_CREAT's mode is ignored for an existing file
            if owner is not None:
                os.fchown(out.fileno(), *owner)
            out.write(text)
    except OSError as err:
        raise EnrolmentError(f"cannot write {path}: {err.strerror or err}") from err
