"""Real storage faults under an agent's data directory, for tests (as root, as CI runs).

Nothing here fakes SQLite: the kernel or the C library fails the writes.

- ``TmpfsVolume``: a size-limited tmpfs; ``fill()`` takes its last byte (ENOSPC), ``free()``
  gives it back.
- ``Ext4Volume``: an ext4 image on a loop device mounted ``errors=remount-ro``, as a Pi's data
  partition is; ``fail()`` makes the kernel remount it read-only as it does when an SD card
  goes bad (every write then fails: EROFS), ``replace()`` mounts a checked copy in its place
  (the card checked and mounted again). A plain ``mount -o remount,ro`` is refused while a
  process holds files open for writing, which the agent always does.
- ``EioShim``: an ``LD_PRELOAD`` library (C, built with gcc) failing ``write``, ``pwrite``,
  ``fsync``... with EIO on files under a path while a control file exists.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path


class StorageFaultError(RuntimeError):
    """A fault could not be set up (not root, no loop device, no gcc)."""


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StorageFaultError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result.stdout.strip()


def _unmount(mountpoint: Path) -> None:
    """Detach whatever is mounted there (lazily: the agent may still hold files open)."""
    while subprocess.run(["mountpoint", "-q", str(mountpoint)], check=False).returncode == 0:
        if subprocess.run(["umount", "-l", str(mountpoint)], check=False).returncode != 0:
            break


class TmpfsVolume:
    """A size-limited tmpfs on ``mountpoint``; a context manager that always unmounts."""

    def __init__(self, mountpoint: Path, *, size_mib: int) -> None:
        self.mountpoint = mountpoint
        self.size_mib = size_mib
        self._filler = mountpoint / ".filler"

    def __enter__(self) -> TmpfsVolume:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "tmpfs", "-o", f"size={self.size_mib}m", "tmpfs", str(self.mountpoint))
        return self

    def __exit__(self, *exc: object) -> None:
        _unmount(self.mountpoint)

    def fill(self) -> int:
        """Write a file until the file system is full; returns the bytes it took."""
        written = 0
        chunk = b"\0" * 65536
        with self._filler.open("ab", buffering=0) as out:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        written += out.write(chunk[:size])
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
        return written

    def free(self) -> None:
        """Give the space back."""
        self._filler.unlink(missing_ok=True)


class Ext4Volume:
    """An ext4 image (in ``image_dir``) on a loop device, mounted on ``mountpoint`` with
    ``errors=remount-ro``; a context manager that always unmounts (the loop device goes with
    the last user of the file system)."""

    def __init__(self, mountpoint: Path, *, image_dir: Path, size_mib: int = 32) -> None:
        self.mountpoint = mountpoint
        self.image = image_dir / "data.img"
        self.size_mib = size_mib
        self._copies = 0

    def __enter__(self) -> Ext4Volume:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.image.parent.mkdir(parents=True, exist_ok=True)
        with self.image.open("wb") as out:
            out.truncate(self.size_mib * 1024 * 1024)
        _run("mkfs.ext4", "-q", "-F", str(self.image))
        self._mount(self.image)
        return self

    def __exit__(self, *exc: object) -> None:
        _unmount(self.mountpoint)

    def _mount(self, image: Path) -> None:
        _run("mount", "-o", "loop,errors=remount-ro", str(image), str(self.mountpoint))

    def fail(self) -> None:
        """An error the kernel cannot ignore: it remounts the file system read-only."""
        device = Path(_run("findmnt", "-no", "SOURCE", str(self.mountpoint))).name
        Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("1")

    @property
    def read_only(self) -> bool:
        """Whether writes are refused now."""
        return bool(os.statvfs(self.mountpoint).f_flag & os.ST_RDONLY)

    def replace(self) -> None:
        """Check a copy of the failed file system and mount it in its place."""
        self._copies += 1
        copy = self.image.with_name(f"data-{self._copies}.img")
        shutil.copyfile(self.image, copy)
        checked = subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True, check=False)
        if checked.returncode > 2:  # 1 and 2: errors corrected
            raise StorageFaultError(f"e2fsck {copy}: exit {checked.returncode}")
        _unmount(self.mountpoint)
        self._mount(copy)
        self.image = copy


class EioShim:
    """The built ``LD_PRELOAD`` library; ``env()`` points it at a path and a control file."""

    def __init__(self, library: Path) -> None:
        self.library = library

    @classmethod
    def build(cls, source: Path, out_dir: Path) -> EioShim:
        """Compile ``source`` with gcc into ``out_dir``."""
        if shutil.which("gcc") is None:
            raise StorageFaultError("gcc is not installed (make sysdeps installs it)")
        out_dir.mkdir(parents=True, exist_ok=True)
        library = out_dir / "libeio.so"
        _run("gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl")
        return cls(library)

    def env(self, *, under: Path, control: Path) -> dict[str, str]:
        """Environment of a process whose writes under ``under`` fail while ``control`` exists."""
        return {
            "LD_PRELOAD": str(self.library),
            "SW_EIO_PREFIX": str(under),
            "SW_EIO_CONTROL": str(control),
        }

    @staticmethod
    def fail(control: Path) -> None:
        """Writes fail from now on."""
        control.touch()

    @staticmethod
    def heal(control: Path) -> None:
        """Writes work again."""
        with contextlib.suppress(FileNotFoundError):
            control.unlink()
