"""A real mosquitto secured exactly as enrolment secures a production broker.

For tests that need the broker's access control to hold (a hostile agent, a stolen box):
the configuration and dynamic-security state come from ``enrol_collector``, agents are
enrolled with ``enrol_agent`` on the running broker, as ``shelterwatch collector
enrol-collector`` / ``enrol-agent`` do::

    with SecuredBroker(tmp_path / "broker", instances=["c1", "c2"]) as broker:
        c1 = broker.collector("c1")          # username, password, client_id
        a = broker.enrol_agent("pm-a")       # ... and its ack key
        client = mqtt.Client(client_id=a.client_id, protocol=mqtt.MQTTv5, ...)
        client.username_pw_set(a.username, a.password)
        client.connect(broker.host, broker.port)

Only the client id each client was enrolled with is accepted with its user name; agents may
publish their own four channels and subscribe to their own ``ack``/``config``/``cmd`` and
the collectors' status; collector instances get every agent's channels (``$share/...``
included). ``Stack(secured=True)`` runs the whole chain on one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.enrolment import (
    ACK_KEY_FILE,
    ACK_SECRET_FILE,
    PASSWORD_FILE,
    BrokerAccess,
    SiteSkeleton,
    collector_password_file,
    enrol_agent,
    enrol_collector,
)
from collector.enrolment.dynsec import agent_client_id, collector_user, find_plugin
from protocol.acksig import read_key_file
from simulators.broker import BrokerError, MosquittoProcess


@dataclass(frozen=True, slots=True)
class BrokerClient:
    """What one enrolled client connects with; agents also get their ack key."""

    username: str
    password: str
    client_id: str
    password_file: Path
    ack_key: bytes | None = None
    ack_key_file: Path | None = None


class SecuredBroker:
    """A mosquitto child process configured by enrolment (dynamic security, size and queue
    limits); collector instances enrolled at construction, agents while it runs."""

    def __init__(
        self, workdir: Path, *, instances: Sequence[str] = ("c1",), port: int | None = None
    ) -> None:
        if find_plugin() is None:
            raise BrokerError("mosquitto's dynamic-security plugin is not installed")
        self.workdir = workdir
        self.collector_dir = workdir / "collectors"
        self.broker_dir = workdir / "broker-conf"
        self.instances = list(instances)
        enrol_collector(
            instances=self.instances, out_dir=self.collector_dir, broker_dir=self.broker_dir
        )
        self.process = MosquittoProcess(
            workdir / "mosquitto", port=port, include_dir=self.broker_dir
        )
        self.agents: dict[str, BrokerClient] = {}

    @property
    def host(self) -> str:
        """Loopback address the broker listens on."""
        return self.process.host

    @property
    def port(self) -> int:
        """Port of its (plain, loopback) listener."""
        return self.process.port

    @property
    def ack_secret_file(self) -> Path:
        """The collectors' master secret (``collector run --ack-secret-file``)."""
        return self.collector_dir / ACK_SECRET_FILE

    @property
    def ack_secret(self) -> bytes:
        """The collectors' master secret itself."""
        return read_key_file(self.ack_secret_file)

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        self.process.start()

    def stop(self) -> None:
        """Stop it cleanly; its plugin saves the state, agents enrolled so far included."""
        self.process.stop()

    def kill(self) -> None:
        """``kill -9``."""
        self.process.kill()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.process.restart()

    def collector(self, instance: str = "c1") -> BrokerClient:
        """The broker client of one collector instance enrolled at construction."""
        if instance not in self.instances:
            raise KeyError(f"collector instance {instance!r} was not enrolled")
        password_file = self.collector_dir / collector_password_file(instance)
        user = collector_user(instance)
        return BrokerClient(
            username=user,
            password=password_file.read_text().strip(),
            client_id=user,
            password_file=password_file,
        )

    def agent_dir(self, agent_id: str) -> Path:
        """Where the agent's password, ack key and site-file skeleton are written."""
        return self.workdir / "agents" / agent_id

    def enrol_agent(self, agent_id: str, *, rotate: bool = False) -> BrokerClient:
        """Enrol (or, ``rotate``, give a new password to) an agent on the running broker."""
        out = self.agent_dir(agent_id)
        enrol_agent(
            site=SiteSkeleton(
                agent_id=agent_id,
                site_id=agent_id.upper(),
                site_kind="pm",
                broker_host=self.host,
                broker_port=self.port,
            ),
            out_dir=out,
            collector_dir=self.collector_dir,
            admin=BrokerAccess(self.host, self.port),
            rotate=rotate,
        )
        client = BrokerClient(
            username=agent_id,
            password=(out / PASSWORD_FILE).read_text().strip(),
            client_id=agent_client_id(agent_id),
            password_file=out / PASSWORD_FILE,
            ack_key=read_key_file(out / ACK_KEY_FILE),
            ack_key_file=out / ACK_KEY_FILE,
        )
        self.agents[agent_id] = client
        return client

    def __enter__(self) -> SecuredBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
