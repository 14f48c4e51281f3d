"""mosquitto password-file and ACL-file entries, as pure functions on text.

mosquitto 2 password files hold ``user:$7$<iterations>$<base64 salt>$<base64 hash>``, the hash
being PBKDF2-HMAC-SHA512 of the password. ACL files hold ``user <name>`` blocks of
``topic read|write|readwrite <filter>`` lines; a block runs until the next ``user`` line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from protocol.topics import (
    AGENT_TO_COLLECTOR,
    COLLECTOR_STATUS_FILTER,
    Channel,
    agent_subscription,
    agent_topic,
)

# mosquitto_passwd's own default. Agent passwords are 32 random bytes, so key stretching adds
# nothing against guessing, while the broker pays the iterations on every CONNECT — a whole
# fleet reconnecting after a broker restart.
DEFAULT_ITERATIONS = 101
_SALT_BYTES = 12  # what mosquitto_passwd uses
_HASH_BYTES = 64  # SHA-512 output

COLLECTOR_TO_AGENT = (Channel.ACK, Channel.CONFIG, Channel.CMD)


def new_password() -> str:
    """A random broker password (256 bits, URL-safe so it survives any config file)."""
    return secrets.token_urlsafe(32)


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """The ``$7$`` PBKDF2-SHA512 hash mosquitto 2 checks passwords against."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(encoded: str, password: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (as mosquitto would decide)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(expected))
    return hmac.compare_digest(digest, expected)


def password_line(username: str, password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """One password-file line for ``username``."""
    _check_username(username)
    return f"{username}:{hash_password(password, iterations=iterations)}"


def password_users(text: str) -> set[str]:
    """User names that have a line in a password file."""
    return {
        line.split(":", 1)[0]
        for line in text.splitlines()
        if ":" in line and not line.lstrip().startswith("#")
    }


def with_password_line(text: str, username: str, line: str) -> str:
    """The password file with ``username``'s line replaced by ``line``, or ``line`` appended."""
    kept = [old for old in text.splitlines() if old.split(":", 1)[0] != username]
    return "\n".join([*kept, line]) + "\n"


def agent_acl(agent_id: str) -> str:
    """ACL block confining an agent to its own topics.

    It publishes its events, telemetry, status (birth and Last Will) and heartbeat, reads what
    the collector sends it and the collectors' status; nothing of any other agent.
    """
    writes = [f"topic write {agent_topic(agent_id, c)}" for c in AGENT_TO_COLLECTOR]
    reads = [f"topic read {agent_topic(agent_id, c)}" for c in COLLECTOR_TO_AGENT]
    return _block(
        agent_id,
        f"# shelterwatch agent {agent_id}",
        *writes,
        *reads,
        f"topic read {COLLECTOR_STATUS_FILTER}",
    )


def collector_acl(username: str) -> str:
    """ACL block of the collector's broker user (shared by all its instances).

    mosquitto checks a ``$share/<group>/<filter>`` subscription against ``<filter>``, so
    plain wildcard reads cover the shared subscription.
    """
    reads = [f"topic read {agent_subscription(c)}" for c in AGENT_TO_COLLECTOR]
    writes = [f"topic write {agent_subscription(c)}" for c in COLLECTOR_TO_AGENT]
    return _block(
        username,
        "# shelterwatch collector (every instance)",
        *reads,
        *writes,
        f"topic readwrite {COLLECTOR_STATUS_FILTER}",
    )


def acl_users(text: str) -> set[str]:
    """User names that have a block in an ACL file."""
    return {
        fields[1]
        for fields in (line.split() for line in text.splitlines())
        if len(fields) == 2 and fields[0] == "user"
    }


def with_acl_block(text: str, block: str) -> str:
    """The ACL file with ``block`` appended after a blank line."""
    body = text.rstrip("\n")
    return f"{body}\n\n{block}" if body else block


def _block(username: str, comment: str, *lines: str) -> str:
    _check_username(username)
    return "\n".join([comment, f"user {username}", *lines]) + "\n"


def _check_username(username: str) -> None:
    # A colon ends the user name in a password file; whitespace ends it in an ACL file.
    if not username or ":" in username or any(c.isspace() for c in username):
        raise ValueError(f"invalid broker user name {username!r}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
