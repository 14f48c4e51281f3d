"""A root file system to chroot into, as a Pi image build does, assembled in a second.

The host's ``/usr`` is bind-mounted read-only (Debian has a merged ``/usr``: ``/bin``, ``/sbin``
and ``/lib`` are links into it), so the tools, Python and systemd's ``systemctl`` are the
host's; ``/etc``, ``/opt``, ``/var``, ``/root`` and ``/tmp`` are the test's own, with an
``/etc`` holding root and the groups asked for, as a fresh image has. The mounts live in a
private mount namespace held by one process: the host never sees them (removing the folder
cannot reach the host's ``/usr``) and they vanish with that process, which ends when the test
does, even killed. The namespace has its own network, with only loopback up, so what runs
inside needs no network to pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_HOLD = """
set -e
root="$1"
mount --bind /usr "$root/usr"
mount -o remount,bind,ro "$root/usr"
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"
ip link set lo up
echo ready
# Held until the test closes this pipe, or dies.
exec cat >/dev/null
"""


class Rootfs:
    """A chroot of the host's ``/usr`` with its own ``/etc``; ``run`` executes inside it."""

    def __init__(self, path: Path, *, groups: dict[str, int]) -> None:
        self.path = path
        self._groups = groups
        self._holder: subprocess.Popen[str] | None = None

    def __enter__(self) -> Rootfs:
        self._lay_out()
        self._holder = subprocess.Popen(
            [
                *("unshare", "--mount", "--net", "--propagation", "private"),
                *("bash", "-c", _HOLD, "hold", str(self.path)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        if self._holder.stdout.readline().strip() != "ready":
            self._holder.kill()
            _, err = self._holder.communicate(timeout=10)
            raise RuntimeError(f"could not mount the root file system: {err.strip()}")
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._holder is not None:
            self._holder.communicate(timeout=10)  # closes its stdin: the holder exits

    def __truediv__(self, inside: str) -> Path:
        """Where a path of the root file system is, seen from the host."""
        return self.path / inside.lstrip("/")

    def command(self, *argv: str, env: dict[str, str] | None = None) -> list[str]:
        """``argv`` run as root inside, with a clean environment (``env`` added)."""
        assert self._holder is not None, "not entered"
        clean = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        return [
            "nsenter",
            f"--target={self._holder.pid}",
            "--mount",
            "--net",
            "--",
            "chroot",
            str(self.path),
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in clean.items()),
            *argv,
        ]

    def run(
        self, *argv: str, env: dict[str, str] | None = None, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside and wait for it."""
        return subprocess.run(
            self.command(*argv, env=env), capture_output=True, text=True, timeout=timeout_s
        )

    def _lay_out(self) -> None:
        for folder in ("usr", "dev", "proc", "run", "opt", "var/lib", "etc/systemd/system"):
            (self / folder).mkdir(parents=True)
        for folder, mode in (("tmp", 0o1777), ("root", 0o700)):
            (self / folder).mkdir(mode=mode)
            os.chmod(self / folder, mode)  # mkdir's mode goes through the umask
        for link in ("bin", "sbin", "lib", "lib64"):
            if Path("/", link).is_symlink():
                (self / link).symlink_to(os.readlink(Path("/", link)))
        groups = {"root": 0, **self._groups}
        etc = {
            "passwd": "root:x:0:0:root:/root:/bin/bash\n",
            "shadow": "root:*:19000:0:99999:7:::\n",
            "group": "".join(f"{name}:x:{gid}:\n" for name, gid in groups.items()),
            "gshadow": "".join(f"{name}:*::\n" for name in groups),
        }
        for name, text in etc.items():
            (self / f"etc/{name}").write_text(text)
        for name in ("shadow", "gshadow"):
            os.chmod(self / f"etc/{name}", 0o640)
        for name in ("login.defs", "nsswitch.conf", "default/useradd"):
            if Path("/etc", name).exists():
                (self / f"etc/{name}").parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(Path("/etc", name), self / f"etc/{name}")
