"""deploy/: the agent's systemd unit and install script, checked without touching the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collector.enrolment.skeleton import BOX_OUTBOX
from siteconfig.outbox import OutboxSettings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "shelterwatch-agent.service"
INSTALL = ROOT / "deploy" / "install-agent.sh"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def install(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, run_dir: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The script with its paths under ``tmp_path`` (the unit under ``tmp_path/root``). With
    ``run_dir``, in a private mount namespace whose ``/run`` is a fresh tmpfs holding that
    folder: ``systemd/system`` there is what a booted systemd looks like."""
    env = {
        **os.environ,
        "SW_PREFIX": str(tmp_path / "opt"),
        "SW_ETC": str(tmp_path / "etc"),
        "SW_DATA": str(tmp_path / "data"),
        "SW_UNIT_DIR": str(tmp_path / "root/etc/systemd/system"),
        "SW_USER": "sw-test-nobody",
        "SW_PYTHON": sys.executable,
        **(env or {}),
    }
    command = ["bash", str(INSTALL), *args]
    if run_dir is not None:
        fake_run = f'mount -t tmpfs tmpfs /run && mkdir -p /run/{run_dir} && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", fake_run, "sh"]
        command += ["bash", str(INSTALL), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)


def test_the_unit_is_a_watched_hardened_notify_service() -> None:
    unit = unit_settings()
    assert unit["Type"] == ["notify"] and unit["Restart"] == ["always"]
    assert int(unit["WatchdogSec"][0]) > 0
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["StateDirectory"] == ["shelterwatch"]
    assert unit["StandardOutput"] == unit["StandardError"] == ["journal"]
    assert unit["ExecStart"][0].endswith("agent run --config /etc/shelterwatch/site.yaml")


def test_what_the_agent_writes_is_on_the_writable_data_partition() -> None:
    writable = [Path(p) for p in unit_settings()["ReadWritePaths"][0].split()]
    for outbox in (OutboxSettings().path, BOX_OUTBOX):
        # the outbox, its boot counter and status socket live beside it
        assert any(outbox.parent.is_relative_to(w) for w in writable), outbox


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify also checks that ExecStart exists: point it at this checkout's command.
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text().replace(
            "/opt/shelterwatch/venv/bin/shelterwatch",
            str(Path(sys.executable).with_name("shelterwatch")),
        )
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")


UNIT_NAME = "shelterwatch-agent.service"


@pytest.mark.skipif(os.geteuid() != 0, reason="fakes /run in a mount namespace: needs root")
@pytest.mark.parametrize(
    ("run_dir", "systemctl"),
    [
        pytest.param(
            "systemd/system",
            [
                "systemctl daemon-reload",
                f"systemctl enable {UNIT_NAME}",
                f"systemctl restart {UNIT_NAME}",
            ],
            id="booted box",
        ),
        # A chroot or an image build: no manager to reload or start anything.
        pytest.param("", [f"systemctl --root=/ enable {UNIT_NAME}"], id="image build"),
    ],
)
def test_dry_run_prints_every_step_and_changes_nothing(
    tmp_path: Path, run_dir: str, systemctl: list[str]
) -> None:
    site = ROOT / "firmware_config" / "sites" / "pm-example.yaml"
    secrets = tmp_path / "enrol"
    secrets.mkdir()
    (secrets / "mqtt-password").write_text("pw\n")
    (secrets / "ack-key").write_text("00" * 32 + "\n")
    result = install(
        tmp_path,
        "--dry-run",
        "--site",
        str(site),
        "--password-file",
        str(secrets / "mqtt-password"),
        "--ack-key-file",
        str(secrets / "ack-key"),
        "--boot-after",
        "17",
        env={"SW_UNIT_DIR": "/etc/systemd/system"},
        run_dir=run_dir,
    )
    assert result.returncode == 0, result.stderr
    steps = [line.removeprefix("would run: ") for line in result.stdout.splitlines()]
    assert any(s.startswith("useradd --system") and s.endswith("sw-test-nobody") for s in steps)
    assert f"{sys.executable} -m venv {tmp_path}/opt/venv" in steps
    assert any(
        s.startswith(f"{tmp_path}/opt/venv/bin/pip install") and "[agent]" in s for s in steps
    )
    assert any(s.endswith(f"{site} {tmp_path}/etc/site.yaml") for s in steps)
    # The secrets readable by the agent's group only, like the password.
    for name in ("mqtt-password", "ack-key"):
        assert (
            f"install -o root -g sw-test-nobody -m 0640 {secrets / name} {tmp_path}/etc/{name}"
            in steps
        )
    assert any(s.endswith(f"{tmp_path}/data/boot") for s in steps)  # a replaced card's count
    assert any(s.endswith(f" /etc/systemd/system/{UNIT_NAME}") for s in steps)
    assert [s for s in steps if s.startswith("systemctl")] == systemctl
    assert list(tmp_path.iterdir()) == [secrets]


def test_a_unit_for_another_root_is_enabled_there_and_nothing_is_started(tmp_path: Path) -> None:
    """Whatever runs on this machine: the unit is not for its systemd."""
    result = install(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    steps = [line.removeprefix("would run: ") for line in result.stdout.splitlines()]
    assert [s for s in steps if s.startswith("systemctl")] == [
        f"systemctl --root={tmp_path}/root enable {UNIT_NAME}"
    ]
    assert f"unit for the root {tmp_path}/root" in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--dry-run", "--site", "/nonexistent/site.yaml"],
            {},
            "no such file: /nonexistent/site.yaml",
        ),
        (["--dry-run", "--from", "/tmp"], {}, "neither a shelterwatch checkout nor a wheel"),
        (["--dry-run", "--boot-after", "soon"], {}, "--boot-after: expected a number, got soon"),
        (["--bogus"], {}, "unknown option --bogus"),
        (
            ["--dry-run"],
            {"SW_UNIT_DIR": "/srv/units"},
            "SW_UNIT_DIR: expected a folder ending in /etc/systemd/system, got /srv/units",
        ),
    ],
)
def test_bad_install_options_say_what_is_wrong(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = install(tmp_path, *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []
