"""deploy/install-agent.sh run for real: on this machine, which has no booted systemd, and
inside a root file system as a Pi image build runs it, offline; in the image, the technicians
of the agent's group run ``agent check`` and everyone else is refused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.enrolment.skeleton import SiteSkeleton, site_yaml
from tests.conftest import wait_for
from tests.deploy.rootfs import Rootfs

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "deploy" / "install-agent.sh"
UNIT = "shelterwatch-agent.service"
# What `systemctl enable` makes for the unit's [Install] WantedBy=multi-user.target.
WANTS = f"etc/systemd/system/multi-user.target.wants/{UNIT}"
AGENT = "/opt/shelterwatch/venv/bin/shelterwatch"
AGENT_ID = "pm-image-0001"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="creates users, chowns and mounts: needs root"),
]


def systemctl_steps(stdout: str) -> list[str]:
    """The systemctl commands the script ran."""
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ systemctl")]


def test_without_a_booted_systemd_the_script_enables_the_unit_and_an_upgrade_runs_new_code(
    tmp_path: Path, agent_wheel: Path
) -> None:
    """The issue's failure: `daemon-reload` without a booted systemd killed the script (under
    `set -e`) before the unit was enabled, even with --no-start."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    user = f"sw-install-{uuid.uuid4().hex[:8]}"  # the script creates it; removed below
    env = {
        **os.environ,
        "SW_PREFIX": str(tmp_path / "opt"),
        "SW_ETC": str(tmp_path / "etc"),
        "SW_DATA": str(tmp_path / "data"),
        "SW_UNIT_DIR": str(root / "etc/systemd/system"),
        "SW_USER": user,
        "SW_PYTHON": sys.executable,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(agent_wheel.parent),
    }
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    installed = tmp_path / f"opt/venv/lib/{python}/site-packages/agent/runtime/status.py"

    def install() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(INSTALL), "--from", str(agent_wheel), "--no-start"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    try:
        first = install()
        assert first.returncode == 0, first.stderr
        # An older build of the same version, then the upgrade with the new wheel.
        installed.write_text(installed.read_text() + "\n# an older build\n")
        second = install()
    finally:
        subprocess.run(["userdel", user], capture_output=True, check=False)
    assert second.returncode == 0, second.stderr

    link = root / WANTS
    assert os.readlink(link) == f"/etc/systemd/system/{UNIT}"
    enabled = subprocess.run(
        ["systemctl", f"--root={root}", "is-enabled", UNIT], capture_output=True, text=True
    )
    assert enabled.stdout.strip() == "enabled"
    # Nothing asked of a systemd that is not there: no reload, no start.
    for result in (first, second):
        assert systemctl_steps(result.stdout) == [f"systemctl --root={root} enable {UNIT}"]
        assert "not started" in result.stdout
    with zipfile.ZipFile(agent_wheel) as wheel:
        assert installed.read_bytes() == wheel.read("agent/runtime/status.py")


@dataclass
class Image:
    """A root file system into which the install script ran, and what it printed."""

    fs: Rootfs
    install: subprocess.CompletedProcess[str]


@pytest.fixture
def image(tmp_path: Path, agent_wheels: Path) -> Iterator[Image]:
    """An image build's install step: the checkout's deploy/ folder, the agent's wheels and
    the enrolment folder copied in, the script run as root in a chroot with no network."""
    if Path("/bin").resolve() != Path("/usr/bin"):
        pytest.skip("the image borrows this machine's /usr, which is not merged (/bin)")
    fs = Rootfs(tmp_path / "root", groups={"dialout": 20, "gpio": 997})
    with fs:
        shutil.copytree(ROOT / "deploy", fs / "/root/shelterwatch/deploy")
        shutil.copytree(agent_wheels, fs / "/root/wheels")
        enrol = fs / "/root/enrol"
        enrol.mkdir()
        skeleton = SiteSkeleton(
            agent_id=AGENT_ID,
            site_id="PM-IMG-0001",
            site_kind="pm",
            broker_host="127.0.0.1",
            broker_port=1883,
        )
        (enrol / "site.yaml").write_text(site_yaml(skeleton))
        (enrol / "mqtt-password").write_text("secret\n")
        (enrol / "ack-key").write_text("ab" * 32 + "\n")
        (wheel,) = (fs / "/root/wheels").glob("shelterwatch-*.whl")
        install = fs.run(
            "bash",
            "/root/shelterwatch/deploy/install-agent.sh",
            *("--from", f"/root/wheels/{wheel.name}", "--site", "/root/enrol/site.yaml"),
            *("--password-file", "/root/enrol/mqtt-password"),
            *("--ack-key-file", "/root/enrol/ack-key"),
            env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/root/wheels"},
            timeout_s=120,
        )
        yield Image(fs, install)


def test_an_image_build_installs_and_enables_the_agent_and_its_group_runs_agent_check(
    image: Image, tmp_path: Path
) -> None:
    """Installed offline in a chroot, enabled, nothing started; then, with the agent running as
    systemd would run it, a technician of the ``shelterwatch`` group runs ``agent check`` as
    docs/deployment-pi.md says, and a user outside it is refused."""
    fs, result = image.fs, image.install
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 file(s) valid" in result.stdout  # the installed agent ran, on the image's Python
    assert os.readlink(fs / WANTS) == f"/etc/systemd/system/{UNIT}"
    assert fs.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    assert systemctl_steps(result.stdout) == [f"systemctl --root=/ enable {UNIT}"]
    assert "no booted systemd" in result.stdout and "not started" in result.stdout
    groups = fs.run("id", "-nG", "shelterwatch").stdout.split()
    assert sorted(groups) == ["dialout", "gpio", "shelterwatch"]
    data = (fs / "/var/lib/shelterwatch").stat()
    uid = int(fs.run("id", "-u", "shelterwatch").stdout)
    assert (data.st_mode & 0o7777, data.st_uid) == (0o750, uid)

    # The agent as systemd runs it: its user, its groups, the unit's umask.
    umask = re.search(r"^UMask=(\d+)$", (ROOT / "deploy" / UNIT).read_text(), re.M)
    assert umask is not None
    log = tmp_path / "agent.log"
    with log.open("w") as out:
        agent = subprocess.Popen(
            fs.command(
                "sh",
                "-c",
                f"umask {umask[1]} && exec setpriv --reuid=shelterwatch --regid=shelterwatch"
                f" --init-groups {AGENT} agent run --config /etc/shelterwatch/site.yaml",
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            "the agent's status socket",
            lambda: (fs / "/var/lib/shelterwatch/agent.sock").is_socket() or agent.poll(),
        )
        assert agent.poll() is None, log.read_text()
        for who, groups in (("technician", ["--groups=shelterwatch"]), ("outsider", [])):
            added = fs.run("useradd", "--no-create-home", *groups, who)
            assert added.returncode == 0, added.stderr
        # The outsider may read a copy of the site file: only the rights on the data folder
        # and the socket refuse them.
        shutil.copy(fs / "/etc/shelterwatch/site.yaml", fs / "/tmp/site.yaml")
        os.chmod(fs / "/tmp/site.yaml", 0o644)

        def check(who: str, config: str) -> subprocess.CompletedProcess[str]:
            return fs.run(
                "setpriv",
                f"--reuid={who}",
                f"--regid={who}",
                "--init-groups",
                AGENT,
                "agent",
                "check",
                "--config",
                config,
            )

        technician = check("technician", "/etc/shelterwatch/site.yaml")
        outsider = check("outsider", "/tmp/site.yaml")
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    # The agent's own screen, with what is wrong: no broker inside the image's network.
    assert technician.stdout.startswith(f"shelterwatch agent {AGENT_ID}"), technician.stderr
    assert "broker not reachable" in technician.stdout and technician.returncode == 1
    assert outsider.returncode == 2
    assert "agent.sock (Permission denied)" in outsider.stderr, outsider.stderr
