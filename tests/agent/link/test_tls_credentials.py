"""The link speaks TLS with per-agent credentials to a real mosquitto; a wrong password fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.buffer import Outbox
from agent.link import AgentLink, FixedStatus
from clocks import SystemClock
from simulators.broker import MosquittoProcess
from siteconfig import LinkSettings, OutboxSettings, TlsSettings


def _write_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shelterwatch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoProcess, Path]]:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_file, cert_file, key_file = _write_pki(pki)
    passwd = pki / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "pm-tls-01", "s3cret-pass"], check=True
    )
    passwd.chmod(0o600)
    broker = MosquittoProcess(
        tmp_path / "broker",
        extra_config=(
            f"cafile {ca_file}\ncertfile {cert_file}\nkeyfile {key_file}\n"
            f"allow_anonymous false\npassword_file {passwd}\n"
        ),
    )
    broker.start()
    try:
        yield broker, ca_file
    finally:
        broker.kill()


async def _connects(broker: MosquittoProcess, ca_file: Path, password: str, tmp_path: Path) -> bool:
    secret = tmp_path / f"password-{password}"
    secret.write_text(password + "\n")
    outbox = Outbox.open(
        settings=OutboxSettings(path=tmp_path / f"outbox-{password}.db"),
        agent_id="pm-tls-01",
        site_id="PM-TLS-01",
        clock=SystemClock(),
    )
    link = AgentLink(
        settings=LinkSettings(
            port=broker.port,
            username="pm-tls-01",
            password_file=secret,
            tls=TlsSettings(ca_file=ca_file),
        ),
        outbox=outbox,
        agent_id="pm-tls-01",
        site_id="PM-TLS-01",
        boot=1,
        agent_version="test",
        status=FixedStatus(),
        clock=SystemClock(),
        on_config=lambda _m: None,
        on_command=lambda _m: None,
    )
    try:
        async with link:
            for _ in range(50):
                if link.connected:
                    return True
                await asyncio.sleep(0.1)
            return False
    finally:
        outbox.close()


async def test_tls_with_the_agent_password_connects(
    tls_broker: tuple[MosquittoProcess, Path], tmp_path: Path
) -> None:
    broker, ca_file = tls_broker
    assert await _connects(broker, ca_file, "s3cret-pass", tmp_path)


async def test_a_wrong_password_is_refused_and_the_agent_keeps_running(
    tls_broker: tuple[MosquittoProcess, Path], tmp_path: Path
) -> None:
    broker, ca_file = tls_broker
    assert not await _connects(broker, ca_file, "wrong", tmp_path)
