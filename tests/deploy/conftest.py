"""What the install tests share: the agent's wheels, built once per test run."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Left out of the copy the wheel is built from, besides dot folders: not the project's source.
_NOT_SOURCE = {"tests", "build", "artifacts", "var"}


def _build_wheels(into: Path) -> None:
    """This checkout's wheel and its agent dependencies' wheels, as an image build takes them
    to a box without network (``pip install --no-index --find-links``).

    Built from a copy: a build in the checkout would leave ``build/`` there, whose stale files
    a later build would ship."""
    source = into.parent / f"{into.name}-source"

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {
            n
            for n in names
            if n == "__pycache__"
            or n.endswith(".egg-info")
            or (top and (n in _NOT_SOURCE or n.startswith(".")))
        }

    shutil.copytree(ROOT, source, ignore=ignore)
    # Outside the root file system, with the network the venv was made with (and pip's cache).
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"),
            *("--wheel-dir", str(into), f"{source}[agent]"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(source)


@pytest.fixture(scope="session")
def agent_wheels(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder of wheels: this checkout's (``shelterwatch-*.whl``) and its agent dependencies'.
    Under pytest-xdist the workers share one build (the pattern of xdist's documentation)."""
    if worker_id == "master":
        into = tmp_path_factory.mktemp("agent-wheels")
        _build_wheels(into)
        return into
    shared = tmp_path_factory.getbasetemp().parent
    into = shared / "agent-wheels"
    with (shared / "agent-wheels.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "agent-wheels.done").exists():
            shutil.rmtree(into, ignore_errors=True)
            into.mkdir()
            _build_wheels(into)
            (shared / "agent-wheels.done").touch()
    return into


@pytest.fixture(scope="session")
def agent_wheel(agent_wheels: Path) -> Path:
    """This checkout's wheel."""
    (wheel,) = agent_wheels.glob("shelterwatch-*.whl")
    return wheel
