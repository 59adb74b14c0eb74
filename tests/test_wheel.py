"""The release artefacts: ``scripts/wheel.sh`` builds an sdist with every
source the build needs and a manylinux wheel that carries librdkafka.

The wheel is installed alone (``--no-deps``) into a fresh venv and used
from outside the source tree, without ``PYTHONPATH`` or
``LD_LIBRARY_PATH``: the extension must map the wheel's own copy of
librdkafka (``aiokafka_c.libs/``), never the system's, and produce to the
real broker. A wheel that cannot be built fails these tests; nothing here
is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ReadBack

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
ABI = f"cp{sys.version_info.major}{sys.version_info.minor}"


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path
    log: str


@dataclass(frozen=True)
class Installed:
    python: Path
    site_packages: Path
    env: dict[str, str]


def _clean_env() -> dict[str, str]:
    """The environment a user's process would have: nothing pointing into
    the source tree or at extra libraries."""
    env = dict(os.environ)
    for var in (
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONDEVMODE",
        "PYTHONASYNCIODEBUG",
        "LD_PRELOAD",
        "VIRTUAL_ENV",
    ):
        env.pop(var, None)
    env["LD_LIBRARY_PATH"] = ""
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Build the sdist and the repaired wheel, into a temporary directory
    (never the tree's dist/), for the interpreter running the tests."""
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "wheel.sh"), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"scripts/wheel.sh failed:\n{log}"
    sdists = sorted(out.glob("aiokafka_c-*.tar.gz"))
    wheels = sorted(out.glob(f"aiokafka_c-*-{ABI}-{ABI}-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, (
        f"expected one sdist and one {ABI} wheel in {out}: "
        f"{sorted(p.name for p in out.iterdir())}\n{log}"
    )
    return Built(sdists[0], wheels[0], log)


@pytest.fixture(scope="module")
def installed(
    built: Built, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """A fresh venv holding only the wheel."""
    home = tmp_path_factory.mktemp("venv-home")
    venv_dir = home / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    python = venv_dir / "bin" / "python"
    env = _clean_env()
    proc = subprocess.run(
        [
            str(python), "-m", "pip", "install", "-q", "--no-deps",
            "--no-index", "--disable-pip-version-check",
            "--root-user-action=ignore", str(built.wheel),
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = subprocess.run(
        [str(python), "-I", "-c",
         "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=home, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    return Installed(python, Path(site), env)


def test_sdist_carries_what_the_build_needs(built: Built) -> None:
    with tarfile.open(built.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    tracked = subprocess.run(
        ["git", "ls-files", "src", "aiokafka_c"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    wanted = {
        n for n in tracked
        if n.endswith((".c", ".h", ".py", ".pyi", ".html", "py.typed"))
    }
    assert wanted, "git ls-files found no sources"
    assert wanted <= names, f"missing from the sdist: {wanted - names}"
    for required in (
        "aiokafka_c/py.typed",
        "aiokafka_c/_core.pyi",
        "aiokafka_c/example/index.html",
        "setup.py",
        "pyproject.toml",
        "README.rst",
    ):
        assert required in names
    assert not [n for n in names if n.endswith((".so", ".o"))]


def test_wheel_is_manylinux_and_bundles_librdkafka(built: Built) -> None:
    assert "-manylinux_" in built.wheel.name, built.wheel.name
    with zipfile.ZipFile(built.wheel) as whl:
        names = whl.namelist()
    libs = [n for n in names if n.startswith("aiokafka_c.libs/")]
    assert any(Path(n).name.startswith("librdkafka-") for n in libs), names
    assert any(
        n.startswith(f"aiokafka_c/_core.cpython-{ABI[2:]}") for n in names
    ), names
    for data in ("aiokafka_c/py.typed", "aiokafka_c/_core.pyi",
                 "aiokafka_c/example/index.html"):
        assert data in names


# Run in the venv, from outside the tree: import, report which librdkafka
# the process mapped, then produce one message to the real broker.
PROBE = r"""
import asyncio, json, sys
import aiokafka_c
from aiokafka_c import AIOProducer

maps = set()
with open("/proc/self/maps") as f:
    for line in f:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            maps.add(parts[5].strip())

async def produce(bootstrap, topic):
    p = AIOProducer({"bootstrap.servers": bootstrap})
    try:
        msg = await p.produce(topic, b"x")
    finally:
        await p.close()
    return msg.partition(), msg.offset()

partition, offset = asyncio.run(produce(sys.argv[1], sys.argv[2]))
print(json.dumps({
    "package": aiokafka_c.__file__,
    "core": aiokafka_c._core.__file__,
    "version": aiokafka_c.librdkafka_version()[0],
    "maps": sorted(maps),
    "partition": partition,
    "offset": offset,
}))
"""


def test_installed_wheel_uses_its_own_librdkafka_and_produces(
    installed: Installed,
    kafka_bootstrap: str,
    topic: str,
    read_back: ReadBack,
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [str(installed.python), "-I", "-c", PROBE, kafka_bootstrap, topic],
        cwd=tmp_path,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    site = installed.site_packages.resolve()
    for key in ("package", "core"):
        path = Path(report[key]).resolve()
        assert path.is_relative_to(site), (key, path, site)
    assert not any(m.startswith(str(ROOT) + "/") for m in report["maps"])

    libs_dir = site / "aiokafka_c.libs"
    rdkafka = [m for m in report["maps"] if "librdkafka" in Path(m).name]
    assert rdkafka, f"no librdkafka mapped: {report['maps']}"
    for mapped in rdkafka:
        assert Path(mapped).resolve().parent == libs_dir, (
            f"librdkafka mapped from {mapped}, not from {libs_dir}"
        )
    system = [m for m in rdkafka if m.startswith(("/usr/lib", "/lib"))]
    assert not system, f"the system librdkafka is mapped: {system}"
    assert report["version"].startswith("2.")

    assert report["partition"] == 0 and report["offset"] == 0, report
    [msg] = read_back(topic, 1)
    assert msg.value() == b"x"
