"""Enrolment: broker credentials, ACL entries and a site-file skeleton, written to files.

Everything is computed and checked before the first file is written, so a refusal changes
nothing. The broker's files are replaced atomically (temporary file, fsync, rename) keeping
their owner and mode, under a lock so two enrolments at once cannot lose a line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from collector.enrolment import mosquitto
from collector.enrolment.errors import AlreadyEnrolled, EnrolmentError, NotEnrolled
from collector.enrolment.skeleton import SiteSkeleton, site_yaml
from protocol.topics import AGENT_ID_PATTERN, valid_agent_id

PASSWORD_FILE = "mqtt-password"
SITE_FILE = "site.yaml"
# Entries for the broker's administrator when the broker's files are not given.
PASSWD_ENTRY_FILE = "mosquitto-passwd.line"
ACL_ENTRY_FILE = "mosquitto-acl.conf"
# New broker files: readable by the broker's group (mosquitto reads them as its own user).
_NEW_BROKER_FILE_MODE = 0o640


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The broker's password and ACL files to update; None: write entries to the out folder."""

    passwd: Path | None = None
    acl: Path | None = None


@dataclass(slots=True)
class Enrolment:
    """What an enrolment wrote, and what the operator still has to do."""

    username: str
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def enrol_agent(
    *,
    site: SiteSkeleton,
    out_dir: Path,
    broker: BrokerFiles,
    collector_user: str = "collector",
    rotate: bool = False,
) -> Enrolment:
    """Create an agent's broker password, its ACL block and its site-file skeleton."""
    if not valid_agent_id(site.agent_id):
        raise EnrolmentError(f"invalid agent id {site.agent_id!r}: must match {AGENT_ID_PATTERN}")
    username = site.agent_id
    site_text = site_yaml(site)
    result = _enrol(
        username=username,
        acl_block=mosquitto.agent_acl(site.agent_id),
        password_path=out_dir / PASSWORD_FILE,
        out_dir=out_dir,
        broker=broker,
        rotate=rotate,
    )
    site_path = out_dir / SITE_FILE
    if site_path.exists():
        result.notes.append(f"{site_path} kept as it is (it may hold the site's devices)")
    else:
        _write_file(site_path, site_text, mode=0o644)
        result.written.append(site_path)
    if broker.acl is not None and collector_user not in mosquitto.acl_users(_read(broker.acl)):
        result.notes.append(
            f"{broker.acl} has no block for the collector's user {collector_user!r}: "
            "run `shelterwatch collector enrol-collector` or the collector hears nothing"
        )
    return result


def enrol_collector(
    *, username: str, out_dir: Path, broker: BrokerFiles, rotate: bool = False
) -> Enrolment:
    """Create the collector's broker password and its ACL block (shared by every instance)."""
    return _enrol(
        username=username,
        acl_block=mosquitto.collector_acl(username),
        password_path=out_dir / f"{username}-{PASSWORD_FILE}",
        out_dir=out_dir,
        broker=broker,
        rotate=rotate,
    )


def _enrol(
    *,
    username: str,
    acl_block: str,
    password_path: Path,
    out_dir: Path,
    broker: BrokerFiles,
    rotate: bool,
) -> Enrolment:
    if broker.passwd is not None and broker.passwd == broker.acl:
        raise EnrolmentError(f"{broker.passwd} cannot be both the password and the ACL file")
    password = mosquitto.new_password()
    line = mosquitto.password_line(username, password)
    result = Enrolment(username=username)
    # Checked under the locks, so two enrolments of one agent cannot both pass.
    with _locked(broker.passwd, broker.acl):
        passwd_text = _read(broker.passwd) if broker.passwd is not None else ""
        acl_text = _read(broker.acl) if broker.acl is not None else ""
        _check_state(
            username=username,
            password_path=password_path,
            passwd_users=mosquitto.password_users(passwd_text),
            acl_users=mosquitto.acl_users(acl_text),
            broker=broker,
            rotate=rotate,
        )
        _make_dir(out_dir)
        _write_file(password_path, password + "\n", mode=0o600)
        result.written.append(password_path)
        if broker.passwd is None:
            entry = out_dir / PASSWD_ENTRY_FILE
            _write_file(entry, line + "\n", mode=0o600)
            result.written.append(entry)
            result.notes.append(f"append {entry} to the broker's password_file")
        else:
            _replace(broker.passwd, mosquitto.with_password_line(passwd_text, username, line))
            result.written.append(broker.passwd)
        if broker.acl is None:
            entry = out_dir / ACL_ENTRY_FILE
            _write_file(entry, acl_block, mode=0o644)
            result.written.append(entry)
            result.notes.append(f"append {entry} to the broker's acl_file")
        elif username not in mosquitto.acl_users(acl_text):
            _replace(broker.acl, mosquitto.with_acl_block(acl_text, acl_block))
            result.written.append(broker.acl)
    if broker.passwd is not None or broker.acl is not None:
        result.notes.append("reload the broker so it reads its files: systemctl reload mosquitto")
    return result


def _check_state(
    *,
    username: str,
    password_path: Path,
    passwd_users: set[str],
    acl_users: set[str],
    broker: BrokerFiles,
    rotate: bool,
) -> None:
    """Refuse a second enrolment without ``rotate``, and a rotation of nothing."""
    in_passwd = broker.passwd is not None and username in passwd_users
    in_acl = broker.acl is not None and username in acl_users
    found = [
        str(path)
        for path, present in (
            (broker.passwd, in_passwd),
            (broker.acl, in_acl),
            (password_path, password_path.exists()),
        )
        if present
    ]
    if found and not rotate:
        raise AlreadyEnrolled(
            f"{username} is already enrolled ({', '.join(found)}): nothing written; "
            "use --rotate to replace its password"
        )
    # A rotation replaces a password the broker knows (or, without the broker's file, the one
    # this folder holds); anything else would be a first enrolment in disguise.
    has_password = in_passwd if broker.passwd is not None else password_path.exists()
    if rotate and not has_password:
        where = broker.passwd if broker.passwd is not None else password_path
        raise NotEnrolled(f"{username} has no password in {where}: nothing to rotate")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
    except OSError as err:
        raise EnrolmentError(f"cannot read {path}: {err.strerror or err}") from err


@contextlib.contextmanager
def _locked(*paths: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on the folders of ``paths`` (the files are replaced by renames,
    so the lock is on their folder; each folder once, in order, so two enrolments cannot
    deadlock)."""
    folders = sorted({p.resolve().parent for p in paths if p is not None})
    fds: list[int] = []
    try:
        for folder in folders:
            try:
                fds.append(os.open(folder, os.O_RDONLY))
            except OSError as err:
                raise EnrolmentError(f"cannot open {folder}: {err.strerror or err}") from err
            fcntl.flock(fds[-1], fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def _replace(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, keeping its owner and mode."""
    try:
        st = path.stat()
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = _NEW_BROKER_FILE_MODE, None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        if owner is not None and owner != (os.getuid(), os.getgid()):
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise EnrolmentError(f"cannot write {path}: {err.strerror or err}") from err


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise EnrolmentError(f"cannot create {path}: {err.strerror or err}") from err


def _write_file(path: Path, text: str, *, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(path, mode)  # O_CREAT's mode is ignored for a file that already exists
    except OSError as err:
        raise EnrolmentError(f"cannot write {path}: {err.strerror or err}") from err
