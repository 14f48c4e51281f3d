"""mosquitto's dynamic-security plugin: the broker configuration and ACLs enrolment generates.

Pure functions on data: the plugin's JSON state (written once, before the broker first
starts), the commands its ``$CONTROL/dynamic-security/v1`` topic takes (everything after,
while it runs), and the ``*.conf`` the broker includes.

Why the plugin rather than mosquitto's ``password_file``/``acl_file``: with an ACL file, a
``$share/...`` subscription is granted (SUBACK 0) and only filtered at delivery, so an agent
could join the collectors' shared subscription and divert other agents' messages; and any
client id goes with any user, so a stolen password could take over another agent's or a
collector's session. The plugin checks the subscription itself (SUBACK 0x87) and binds a
client's id to its user name.

The clients:

- each agent: user ``<agent_id>``, client id ``agent-<agent_id>`` (bound), its own role
  ``agent-<agent_id>``: publish its four outgoing channels, subscribe to its ``ack``,
  ``config`` and ``cmd`` and to the collectors' status; nothing else (no ``$share``, no
  wildcard over agents);
- each collector instance: user and client id ``collector-<instance>`` (bound), the shared
  role ``shelterwatch-collector``;
- the enrolment's own admin, ``shelterwatch-admin``: only the plugin's control topic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Any

from protocol import MAX_PAYLOAD_BYTES
from protocol.topics import (
    AGENT_TO_COLLECTOR,
    COLLECTOR_STATUS_FILTER,
    Channel,
    agent_subscription,
    agent_topic,
)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
CONTROL_RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
ADMIN_USER = "shelterwatch-admin"
ADMIN_ROLE = "shelterwatch-admin"
COLLECTOR_ROLE = "shelterwatch-collector"
COLLECTOR_PREFIX = "collector"
COLLECTOR_TO_AGENT = (Channel.ACK, Channel.CONFIG, Channel.CMD)
INSTANCE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # as CollectorSettings.instance_id
_INSTANCE_ID_RE = re.compile(INSTANCE_ID_PATTERN)

# The plugin's file names, beside each other in the folder the broker includes.
CONF_FILE = "shelterwatch.conf"
STATE_FILE = "dynamic-security.json"
# Where distributions put the plugin (Debian/Ubuntu per architecture, then source builds).
PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)

# A packet holds the payload and its topic, packet id, properties and fixed header: a 1 KiB
# margin over the payload limit covers the longest agent topic many times over.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 1024
# QoS 1 messages the broker keeps for a client beyond those in flight. An agent receives
# little (acks at QoS 0, config, commands); a collector instance receives its share of the
# fleet while it restarts (its session lasts 60 s): about a minute of a national fleet's
# traffic (~21,000 messages). Beyond, messages are dropped and the agents re-send them.
MAX_QUEUED_MESSAGES = 20_000
MAX_QUEUED_BYTES = 64 * 1024 * 1024
# Outgoing QoS 1 messages in flight per client; mosquitto's default is 20, which would pace
# the collector's intake by round trips.
MAX_INFLIGHT_MESSAGES = 1000

# mosquitto's own default: passwords are 32 random bytes, so stretching adds nothing against
# guessing, while the broker pays the iterations on every CONNECT of a reconnecting fleet.
DEFAULT_ITERATIONS = 101
_SALT_BYTES = 12  # what the plugin uses
_HASH_BYTES = 64  # SHA-512


def new_password() -> str:
    """A random broker password (256 bits, URL-safe so it survives any file)."""
    return secrets.token_urlsafe(32)


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> tuple[str, str, int]:
    """(base64 hash, base64 salt, iterations): PBKDF2-HMAC-SHA512, as the plugin stores it."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    return _b64(digest), _b64(salt), iterations


def verify_password(record: dict[str, Any], password: str) -> bool:
    """True when ``password`` matches a client record of the state file."""
    try:
        salt, expected = base64.b64decode(record["salt"]), base64.b64decode(record["password"])
        iterations = int(record["iterations"])
    except (KeyError, ValueError, TypeError):
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)


# -- identities ---------------------------------------------------------------------------


def agent_client_id(agent_id: str) -> str:
    """The only client id an agent's user may connect with."""
    return f"agent-{agent_id}"


def agent_role(agent_id: str) -> str:
    """The role holding one agent's ACLs."""
    return f"agent-{agent_id}"


def collector_user(instance_id: str) -> str:
    """User name, and bound client id, of one collector instance."""
    return f"{COLLECTOR_PREFIX}-{instance_id}"


def valid_instance_id(instance_id: str) -> bool:
    """True when ``instance_id`` may name a collector instance."""
    return bool(_INSTANCE_ID_RE.match(instance_id))


def reserved_agent_id(agent_id: str) -> str | None:
    """Why ``agent_id`` may not be an agent's (its user name would be a collector's or the
    admin's), or None."""
    if agent_id.startswith(COLLECTOR_PREFIX):
        return (
            f"agent id {agent_id!r} is reserved: names starting with {COLLECTOR_PREFIX!r} "
            "belong to the collector instances"
        )
    if agent_id.startswith("shelterwatch"):
        return (
            f"agent id {agent_id!r} is reserved: names starting with 'shelterwatch' "
            "are the broker's own"
        )
    return None


# -- ACLs ---------------------------------------------------------------------------------


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def agent_acls(agent_id: str) -> list[dict[str, Any]]:
    """One agent's ACLs: its own topics and the collectors' status, literally."""
    sends = [agent_topic(agent_id, c) for c in AGENT_TO_COLLECTOR]
    hears = [agent_topic(agent_id, c) for c in COLLECTOR_TO_AGENT] + [COLLECTOR_STATUS_FILTER]
    # subscribeLiteral: the filter must be exactly this text, so no wildcard over agents and
    # no $share/... form of it.
    return (
        [_acl("publishClientSend", t) for t in sends]
        + [_acl("subscribeLiteral", t) for t in hears]
        + [_acl("publishClientReceive", t) for t in hears]
    )


def collector_acls() -> list[dict[str, Any]]:
    """The collector instances' ACLs: every agent's outgoing channels, shared or not, and
    publishing what agents hear."""
    acls: list[dict[str, Any]] = []
    for channel in AGENT_TO_COLLECTOR:
        every = agent_subscription(channel)
        acls += [
            _acl("subscribePattern", f"$share/+/{every}"),
            _acl("subscribePattern", every),
            _acl("publishClientReceive", every),
        ]
    acls += [_acl("publishClientSend", agent_subscription(c)) for c in COLLECTOR_TO_AGENT]
    acls.append(_acl("publishClientSend", COLLECTOR_STATUS_FILTER))
    return acls


def admin_acls() -> list[dict[str, Any]]:
    """The enrolment admin's ACLs: the plugin's control topic and nothing else."""
    control = "$CONTROL/dynamic-security/#"
    return [
        _acl("publishClientSend", control),
        _acl("publishClientReceive", control),
        _acl("subscribePattern", control),
    ]


# Anything not allowed by a role is refused, receiving included.
DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


# -- the state file (before the broker first starts) --------------------------------------


def client_record(
    username: str, password: str, *, clientid: str | None, role: str, textname: str
) -> dict[str, Any]:
    """A client of the state file, its password hashed as the plugin does."""
    digest, salt, iterations = hash_password(password)
    record: dict[str, Any] = {
        "username": username,
        "textName": textname,
        "password": digest,
        "salt": salt,
        "iterations": iterations,
        "roles": [{"rolename": role}],
    }
    if clientid is not None:
        record["clientid"] = clientid
    return record


def initial_state(*, admin_password: str, collectors: dict[str, str]) -> dict[str, Any]:
    """The plugin's state before first start: the admin and the collector instances
    (``collectors``: instance id -> password). Agents are added while the broker runs."""
    clients = [
        client_record(
            ADMIN_USER,
            admin_password,
            clientid=None,
            role=ADMIN_ROLE,
            textname="shelterwatch enrolment (dynamic-security admin)",
        )
    ]
    clients += [
        client_record(
            collector_user(instance),
            password,
            clientid=collector_user(instance),
            role=COLLECTOR_ROLE,
            textname=f"shelterwatch collector instance {instance}",
        )
        for instance, password in collectors.items()
    ]
    return {
        "clients": clients,
        "groups": [],
        "roles": [
            {"rolename": ADMIN_ROLE, "acls": admin_acls()},
            {"rolename": COLLECTOR_ROLE, "acls": collector_acls()},
        ],
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
    }


# -- commands on $CONTROL/dynamic-security/v1 (while the broker runs) ---------------------


def get_client(username: str) -> dict[str, Any]:
    """Ask for one client (answered with an error when it does not exist)."""
    return {"command": "getClient", "username": username}


def create_agent(agent_id: str, password: str) -> list[dict[str, Any]]:
    """Create an agent's role and its client bound to its client id."""
    return [
        {"command": "createRole", "rolename": agent_role(agent_id), "acls": agent_acls(agent_id)},
        {
            "command": "createClient",
            "username": agent_id,
            "password": password,
            "clientid": agent_client_id(agent_id),
            "textname": "shelterwatch agent",
            "roles": [{"rolename": agent_role(agent_id)}],
        },
    ]


def create_collector(instance_id: str, password: str) -> dict[str, Any]:
    """Create a collector instance's client (the collectors' role exists from the start)."""
    user = collector_user(instance_id)
    return {
        "command": "createClient",
        "username": user,
        "password": password,
        "clientid": user,
        "textname": f"shelterwatch collector instance {instance_id}",
        "roles": [{"rolename": COLLECTOR_ROLE}],
    }


def set_password(username: str, password: str) -> dict[str, Any]:
    """Replace a client's password (the plugin disconnects whoever is connected as it)."""
    return {"command": "setClientPassword", "username": username, "password": password}


def is_agent_client(client: dict[str, Any], agent_id: str) -> bool:
    """True when a ``getClient`` answer is the agent's own client as enrolment made it."""
    roles = {r.get("rolename") for r in client.get("roles", [])}
    return client.get("clientid") == agent_client_id(agent_id) and agent_role(agent_id) in roles


# -- the broker configuration -------------------------------------------------------------


def broker_conf(*, state_file: Path, plugin: Path) -> str:
    """The ``*.conf`` the broker includes (``include_dir`` of its folder)."""
    return f"""\
# shelterwatch broker hardening, from `shelterwatch collector enrol-collector`.
# Included from mosquitto.conf, whose listeners stay there (TLS on 8883 for the boxes,
# loopback 1883 for the collectors and enrolment), by:
#   include_dir {state_file.parent}

# Who may connect and what each may do: the dynamic-security plugin. Its state file is
# rewritten by the plugin itself; change it only through its control topic (enrol-agent).
allow_anonymous false
allow_zero_length_clientid false
plugin {plugin}
plugin_opt_config_file {state_file}

# The protocol's payload limit ({MAX_PAYLOAD_BYTES} bytes) plus room for the topic and
# headers; a bigger packet closes the connection.
max_packet_size {MAX_PACKET_BYTES}

# Per client: what the broker holds for it beyond what is in flight (a collector instance's
# share of the fleet while it restarts), and what it sends it before waiting for PUBACKs.
max_queued_messages {MAX_QUEUED_MESSAGES}
max_queued_bytes {MAX_QUEUED_BYTES}
max_inflight_messages {MAX_INFLIGHT_MESSAGES}
"""


def find_plugin() -> Path | None:
    """The dynamic-security plugin on this machine, if installed where packages put it."""
    for candidate in PLUGIN_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
