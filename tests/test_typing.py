"""The public API is typed: mypy --strict over the package, and stubtest
checking _core.pyi against the compiled extension."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_mypy_strict_over_the_package() -> None:
    r = _run("mypy", "--strict", "-p", "aiokafka_c")
    assert r.returncode == 0, r.stdout + r.stderr


def test_stubtest_core_stub_matches_the_extension() -> None:
    r = _run("mypy.stubtest", "aiokafka_c._core")
    assert r.returncode == 0, r.stdout + r.stderr


def test_typed_usage_checks(tmp_path: Path) -> None:
    """A user's code is checked against the stub: good code passes, a
    wrong argument type is caught."""
    good = tmp_path / "good.py"
    good.write_text(
        "import asyncio\n"
        "from aiokafka_c import AIOProducer, KafkaError, Message\n"
        "async def main() -> int:\n"
        "    async with AIOProducer({'bootstrap.servers': 'x'}) as p:\n"
        "        m: Message = await p.produce('t', b'v', key='k',\n"
        "                                     headers=[('h', b'1')])\n"
        "        def cb(err: KafkaError | None, msg: Message) -> None: ...\n"
        "        p.produce_nowait('t', 'v', on_delivery=cb,\n"
        "                         dispatch='poll_thread')\n"
        "        left: int = await p.flush(1.0)\n"
        "        return (m.offset() or 0) + left\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from aiokafka_c import AIOProducer\n"
        "async def main(p: AIOProducer) -> None:\n"
        "    await p.produce('t', 42)\n"
        "    p.produce_nowait('t', b'', dispatch='elsewhere')\n"
    )
    r = _run("mypy", "--strict", str(good))
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run("mypy", "--strict", str(bad))
    assert r.returncode != 0
    assert 'Argument 2 to "produce"' in r.stdout
    assert '"dispatch"' in r.stdout


def test_typed_admin_usage_checks(tmp_path: Path) -> None:
    """Admin results are typed per operation: a user's code that awaits
    them checks, and a wrong argument or result use is caught."""
    good = tmp_path / "good_admin.py"
    good.write_text(
        "import asyncio\n"
        "from aiokafka_c import (AIOAdminClient, ConfigEntry,\n"
        "                        ConfigResource, NewTopic)\n"
        "async def main() -> str | None:\n"
        "    async with AIOAdminClient({'bootstrap.servers': 'x'}) as a:\n"
        "        fs = a.create_topics([NewTopic('t', 3, 1)],\n"
        "                             operation_timeout=30)\n"
        "        await asyncio.gather(*fs.values())\n"
        "        res = ConfigResource('topic', 't')\n"
        "        configs = await a.describe_configs([res])[res]\n"
        "        entry: ConfigEntry = configs['retention.ms']\n"
        "        groups = await a.list_consumer_groups()\n"
        "        ids = [g.group_id for g in groups.valid]\n"
        "        md = await a.list_topics('t', timeout=5)\n"
        "        return entry.value if ids or md.topics else None\n"
    )
    bad = tmp_path / "bad_admin.py"
    bad.write_text(
        "from aiokafka_c import AIOAdminClient\n"
        "async def main(a: AIOAdminClient) -> None:\n"
        "    a.create_topics(['t'])\n"
        "    n: int = await a.delete_topics(['t'])['t']\n"
    )
    r = _run("mypy", "--strict", str(good))
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run("mypy", "--strict", str(bad))
    assert r.returncode != 0
    assert 'List item 0 has incompatible type "str"' in r.stdout, r.stdout
    assert '"None"' in r.stdout, r.stdout


def test_typed_transactions_usage_checks(tmp_path: Path) -> None:
    """The transactional calls are typed: a read-process-write loop
    checks, and offsets or group metadata of the wrong type are caught."""
    good = tmp_path / "good_txn.py"
    good.write_text(
        "from aiokafka_c import AIOConsumer, AIOProducer\n"
        "async def main(c: AIOConsumer) -> None:\n"
        "    p = AIOProducer({'transactional.id': 'x'})\n"
        "    await p.init_transactions(timeout=30)\n"
        "    p.begin_transaction()\n"
        "    await p.commit_transaction()\n"
        "    async with p.transaction():\n"
        "        p.produce_nowait('out', b'v')\n"
        "        await p.send_offsets_to_transaction(\n"
        "            c.position(c.assignment()),\n"
        "            await c.consumer_group_metadata(), timeout=10)\n"
        "    await p.abort_transaction(None)\n"
    )
    bad = tmp_path / "bad_txn.py"
    bad.write_text(
        "from aiokafka_c import AIOProducer\n"
        "async def main(p: AIOProducer) -> None:\n"
        "    await p.send_offsets_to_transaction([('t', 0, 1)], 'group')\n"
        "    await p.begin_transaction()\n"
    )
    r = _run("mypy", "--strict", str(good))
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run("mypy", "--strict", str(bad))
    assert r.returncode != 0
    assert '"send_offsets_to_transaction"' in r.stdout, r.stdout
    assert '"begin_transaction" of "AIOProducer" does not return a value' in (
        r.stdout
    ), r.stdout
