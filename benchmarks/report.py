"""Markdown tables and PNG charts from a results JSON.

Regenerate from a saved run: ``python -m benchmarks.report
benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.plan import (
    CLIENT_LABELS,
    CLIENTS,
    CONSUMER_LABELS,
    CONSUMERS,
    consumer_shape,
)

WEB_LABELS = dict(CLIENT_LABELS, aiokafka_c_example="aiokafka_c example app")

# (measurement, field, row label, format)
PRODUCER_ROWS = [
    ("ff", "rate", "fire-and-forget, msg/s", "rate"),
    ("ff", "enqueue_rate", "fire-and-forget, enqueue only, msg/s", "rate"),
    ("ff_cb", "rate", "fire-and-forget + delivery callback, msg/s", "rate"),
    ("gather_1", "rate", "awaited, gather 1, msg/s", "rate"),
    ("gather_10", "rate", "awaited, gather 10, msg/s", "rate"),
    ("gather_100", "rate", "awaited, gather 100, msg/s", "rate"),
    ("gather_1000", "rate", "awaited, gather 1000, msg/s", "rate"),
    ("tasks_100", "rate", "100 tasks each awaiting, msg/s", "rate"),
    ("tasks_1000", "rate", "1000 tasks each awaiting, msg/s", "rate"),
    ("latency", "p50_ms", "single awaited produce p50, ms", "ms"),
    ("latency", "p99_ms", "single awaited produce p99, ms", "ms"),
    ("latency", "p999_ms", "single awaited produce p99.9, ms", "ms"),
    ("latency", "msgs", "latency samples", "int"),
    ("lag", "lag_p99_ms", "loop lag p99 under load (1 ms ticker), ms", "ms"),
    ("lag", "rate", "load during lag test ({lag_tasks} tasks), msg/s", "rate"),
    ("ff", "cpu_proc_us", "CPU µs/msg, process, fire-and-forget", "us"),
    ("ff", "cpu_loop_us", "CPU µs/msg, loop thread, fire-and-forget", "us"),
    ("gather_1000", "cpu_proc_us", "CPU µs/msg, process, gather 1000", "us"),
    ("gather_1000", "cpu_loop_us", "CPU µs/msg, loop thread, gather 1000",
     "us"),
    ("tasks_1000", "cpu_proc_us", "CPU µs/msg, process, 1000 tasks", "us"),
    ("tasks_1000", "cpu_loop_us", "CPU µs/msg, loop thread, 1000 tasks",
     "us"),
]

RATIO_ROWS = ["ff", "gather_1", "gather_100", "gather_1000", "tasks_100",
              "tasks_1000"]


def _window_names(summ: dict[str, Any]) -> list[str]:
    """The sliding-window measurements (``window_<N>``) in one setting's
    summary, smallest N first: N is the plan's, so the rows are not
    fixed."""
    names = [n for n in summ if n.startswith("window_")]
    return sorted(names, key=lambda n: int(n.split("_", 1)[1]))


def _producer_rows(summ: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """PRODUCER_ROWS plus, for every window_<N> measured, its msg/s after
    the tasks rows and its CPU rows at the end."""
    rates, cpu = [], []
    for name in _window_names(summ):
        n = name.split("_", 1)[1]
        rates.append((name, "rate", f"sliding window, {n} in flight, msg/s",
                      "rate"))
        cpu += [(name, "cpu_proc_us", f"CPU µs/msg, process, window {n}",
                 "us"),
                (name, "cpu_loop_us", f"CPU µs/msg, loop thread, window {n}",
                 "us")]
    at = [row[0] for row in PRODUCER_ROWS].index("latency")
    return PRODUCER_ROWS[:at] + rates + PRODUCER_ROWS[at:] + cpu

WEB_ENDPOINTS = {
    "items1": "awaited produce",
    "items2": "out-of-band, callback on loop",
    "items3": "out-of-band, callback on poll thread",
    "items4": "fire-and-forget",
    "items5": "no-op",
}


def _fmt(v: float | None, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "rate":
        if v >= 1e6:
            return f"{v / 1e6:.2f} M"
        if v >= 1e4:
            return f"{v / 1e3:.0f} k"
        if v >= 1e3:
            return f"{v / 1e3:.1f} k"
        return f"{v:.0f}" if v >= 10 else f"{v:.2g}"
    if kind == "ms":
        return f"{v:.3f}" if v < 10 else f"{v:.0f}"
    if kind == "us":
        return f"{v:.2f}" if v < 100 else f"{v:.0f}"
    if kind == "int":
        return f"{int(v)}"
    if kind == "x":
        return f"{v:.2f}×" if v >= 0.1 else f"{v:.2g}×"
    if kind == "pct":
        return f"{v:.0f}%"
    return str(v)


def med(result: dict[str, Any], setting: str, name: str, client: str,
        field: str) -> float | None:
    try:
        return result["summary"][setting][name][client][field]["median"]
    except (KeyError, TypeError):
        return None


def _spread(result: dict[str, Any], setting: str, name: str, client: str,
            field: str) -> tuple[float, float] | None:
    try:
        s = result["summary"][setting][name][client][field]
    except (KeyError, TypeError):
        return None
    if s["n"] < 2 or not s["median"]:
        return None
    return s["min"], s["max"]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _settings(result: dict[str, Any]) -> list[dict[str, Any]]:
    return result.get("settings", [])


def _throughput_setting(result: dict[str, Any]) -> str | None:
    """The first setting that has the gather scenario: the charts use it."""
    for s in _settings(result):
        if any(k.startswith("gather_")
               for k in result.get("summary", {}).get(s["id"], {})):
            return s["id"]
    return None


# --------------------------------------------------------------------------
# web helpers
# --------------------------------------------------------------------------


def _web_med(app: dict[str, Any], endpoint: str, conc: int,
             field: str) -> float | None:
    try:
        return app["summary"][endpoint][str(conc)][field]["median"]
    except (KeyError, TypeError):
        return None


# --------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:"
                            for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _clients_in(result: dict[str, Any]) -> list[str]:
    cl = result.get("clients", {})
    return [c for c in CLIENTS if c in cl]


def _header_markdown(result: dict[str, Any]) -> list[str]:
    """Title, command, machine, versions, notes; then the clients that
    were not measured and the runs that failed."""
    m = result.get("machine", {})
    v = result.get("versions", {})
    out = [f"# aiokafka_c benchmarks — {result.get('started', '')}", ""]
    out.append(f"Command: `{result.get('command', '')}` (mode "
               f"`{result.get('mode')}`, producer scenarios on "
               f"`{result.get('loop')}`; medians of "
               f"{result.get('plan', {}).get('repeats')} repeats, each "
               "client and scenario in its own process, alternating order).")
    out.append("")
    out.append(f"Machine: {m.get('cpu')}, {m.get('cores')} cores, "
               f"{m.get('memory')}, {m.get('os')}, Python "
               f"{m.get('python')}; load average at start "
               f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_start', []))}."
               " The broker (single-node Kafka, KRaft, loopback) runs on "
               "the same machine.")
    out.append("")
    vers = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    out.append(f"Versions: {vers}.")
    out.append("")
    for note in result.get("notes", []):
        out.append(f"- {note}")
    out.append("")
    clients = _clients_in(result)
    missing = [c for c in clients if not result["clients"][c]["available"]]
    for c in missing:
        out.append(f"- **{c} not measured**: "
                   f"{result['clients'][c].get('reason')}")
    failed = [r for r in result.get("runs", []) if not r.get("ok")]
    for r in failed[:10]:
        out.append(f"- failed run: {r['client']} {'+'.join(r['groups'])} "
                   f"{r['setting']} repeat {r['repeat']}: {r.get('error')}")
    if missing or failed:
        out.append("")
    return out


def _producer_table(result: dict[str, Any], sid: str,
                    clients: list[str]) -> str:
    """One setting's medians: a row per PRODUCER_ROWS entry measured."""
    summ = result["summary"][sid]
    rows = []
    for name, field, label, kind in _producer_rows(summ):
        if name not in summ:
            continue
        cells = [_fmt(med(result, sid, name, c, field), kind)
                 for c in clients]
        if all(x == "–" for x in cells):
            continue
        label = label.format(
            lag_tasks=result.get("plan", {}).get("lag_tasks", "K"))
        rows.append([label] + cells)
    labels = [CLIENT_LABELS[c] for c in clients]
    return _table(["median of repeats"] + labels, rows)


def _producer_ratios(result: dict[str, Any], sid: str,
                     clients: list[str]) -> list[str]:
    """aiokafka_c's throughput divided by each other client's, per
    RATIO_ROWS scenario; empty when there is nothing to divide."""
    summ = result["summary"][sid]
    peers = [c for c in clients if c != "aiokafka_c"]
    rows = []
    for name in RATIO_ROWS + _window_names(summ):
        if name not in summ:
            continue
        mine = med(result, sid, name, "aiokafka_c", "rate")
        cells = [_fmt(_ratio(mine, med(result, sid, name, p, "rate")),
                      "x") for p in peers]
        if all(x == "–" for x in cells):
            continue
        rows.append([name] + cells)
    if not rows:
        return []
    return ["aiokafka_c throughput ÷ peer (same run):", "",
            _table(["scenario"] + [CLIENT_LABELS[p] for p in peers], rows),
            ""]


def _producer_markdown(result: dict[str, Any],
                       clients: list[str]) -> list[str]:
    out: list[str] = []
    for st in _settings(result):
        sid = st["id"]
        if not result.get("summary", {}).get(sid, {}):
            continue
        out += [(f"## Producer: {st['value_size']} B values, "
                 f"acks={st['acks']}, linger.ms={st['linger_ms']}"), ""]
        out += [_producer_table(result, sid, clients), ""]
        if "aiokafka_c" in clients:
            out += _producer_ratios(result, sid, clients)
    return out


def _web_cell(app: dict[str, Any], ep: str, c: int) -> str:
    """req/s (p99 ms) [% of the same app's no-op endpoint]."""
    rps = _web_med(app, ep, c, "rps")
    p99 = _web_med(app, ep, c, "p99_ms")
    pct = _ratio(rps, _web_med(app, "items5", c, "rps"))
    cell = f"{_fmt(rps, 'rate')} ({_fmt(p99, 'ms')})"
    if pct is not None and ep != "items5":
        cell += f" [{pct * 100:.0f}%]"
    return cell


def _web_app_markdown(app_name: str, app: dict[str, Any],
                      conc: list[int]) -> list[str]:
    """One app's heading, its endpoint x concurrency table and notes."""
    out = [f"### {WEB_LABELS.get(app_name, app_name)} — "
           f"{app.get('description', '')}", ""]
    if not app.get("ok"):
        return out + [f"Not measured: {app.get('error')}", ""]
    rows = []
    for ep, desc in WEB_ENDPOINTS.items():
        if ep not in app.get("summary", {}):
            if ep in (app.get("unsupported") or {}):
                rows.append([f"/{ep} {desc}"] + ["n/a"] * len(conc))
            continue
        rows.append([f"/{ep} {desc}"] + [_web_cell(app, ep, c)
                                         for c in conc])
    out += [_table(["endpoint"] + [f"c={c}" for c in conc], rows), ""]
    retrans = sum(p.get("tcp_retrans") or 0 for p in app.get("points", []))
    if retrans:
        out += [f"TCP retransmit counter during this app's runs: "
                f"{retrans} (on loopback these are tail-loss probes "
                "answered by DSACK, i.e. spurious, not stalls).", ""]
    if app.get("unsupported"):
        for ep, why in app["unsupported"].items():
            out.append(f"- /{ep}: {why}")
        out.append("")
    return out


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


def _web_markdown(result: dict[str, Any]) -> list[str]:
    web = result.get("web") or {}
    out = ["## Web: FastAPI + uvicorn (1 worker), wrk POST JSON", ""]
    if web.get("skipped"):
        return out + [f"Skipped: {web['skipped']}", ""]
    out.append(
        f"Each app: one uvicorn worker (`--loop {web.get('loop')}`), "
        f"loaded by `wrk` for {web.get('seconds')} s per point "
        f"(after {web.get('warmup_seconds')} s warm-up), medians of "
        f"{web.get('repeats')} repeat(s); every producer with "
        f"{_settings_text(web.get('producer_settings') or {})}. "
        "Cells: req/s (p99 ms) [% of the same app's no-op endpoint].")
    out.append("")
    if web.get("loop") in ("auto", "uvloop"):
        out += ["Under uvloop an overloaded server serves some "
                "connections late: p99 at c ≥ 100 reaches seconds for "
                "every app, the no-op one included (with `--web-loop "
                "asyncio` p99 stays within ~2× the median). Compare "
                "req/s there, not p99.", ""]
    conc = web.get("concurrency", [])
    for app_name, app in (web.get("apps") or {}).items():
        out += _web_app_markdown(app_name, app, conc)
    return out + _web_floor_markdown(web.get("apps") or {}, conc)


def _web_floor_markdown(apps: dict[str, dict[str, Any]],
                        conc: list[int]) -> list[str]:
    """Every app's awaited endpoint against the floor app's: the same
    request suspended for linger.ms on a loop timer, no Kafka."""
    floor = apps.get("asyncio_floor")
    if not floor or not floor.get("ok"):
        return []
    rows = []
    for name, app in apps.items():
        if name == "asyncio_floor" or not app.get("ok"):
            continue
        rows.append([WEB_LABELS.get(name, name)] + [
            _fmt(_ratio(_web_med(app, "items1", c, "rps"),
                        _web_med(floor, "items1", c, "rps")), "x")
            for c in conc])
    return ["Awaited endpoint (/items1) req/s ÷ the asyncio floor app's "
            "/items1 (the same request suspended until a linger.ms timer "
            "per batch fires, no Kafka), same run:", "",
            _table(["app"] + [f"c={c}" for c in conc], rows), ""]


def _clients_markdown(result: dict[str, Any],
                      clients: list[str]) -> list[str]:
    out = ["## Clients", ""]
    for c in clients:
        info = result["clients"][c]
        out.append(f"- **{CLIENT_LABELS[c]}** (`{c}`): {info['note']}")
        cnote = info.get("consumer_note")
        if cnote:
            line = f"  - consumer: {cnote}"
            if info.get("consumer_available") is False:
                line += (" — **not measured**: "
                         f"{info.get('consumer_reason')}")
            out.append(line)
    out.append("")
    return out


def markdown(result: dict[str, Any], charts: Sequence[str] = ()) -> str:
    clients = _clients_in(result)
    out = _header_markdown(result)
    out += _producer_markdown(result, clients)
    out += consumer_markdown(result)
    out += _web_markdown(result)
    if charts:
        out += ["## Charts", ""]
        out += [f"![{c}]({c})" for c in charts]
        out.append("")
    out += _clients_markdown(result, clients)
    return "\n".join(out)


# --------------------------------------------------------------------------
# consumers
# --------------------------------------------------------------------------


def consumer_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(client, variant) pairs that have numbers, in display order."""
    cons = result.get("consumer") or {}
    sid = (cons.get("setting") or {}).get("id")
    summ = result.get("summary", {}).get(sid or "", {})
    return [(c, v) for c, v in CONSUMERS
            if c in summ.get(f"consume_{v}", {})]


def _cmed(result: dict[str, Any], client: str, variant: str,
          field: str) -> float | None:
    sid = ((result.get("consumer") or {}).get("setting") or {}).get("id")
    if not sid:
        return None
    return med(result, sid, f"consume_{variant}", client, field)


def _consumer_intro(result: dict[str, Any], st: dict[str, Any],
                    fill: dict[str, Any]) -> str:
    """How the topic was filled and how every consumer was timed."""
    reps = result.get("plan", {}).get("repeats")
    return (
        f"{fill.get('messages')} messages pre-filled in "
        f"{fill.get('seconds')} s before the consumer scenarios "
        f"({fill.get('producer', 'producer')}, acks=1, keyless). "
        "Each consumer: its own process, a fresh "
        "group id, `auto.offset.reset=earliest`, otherwise its client's "
        "defaults; every message's value is read. Timed from the first "
        f"message to the {st.get('count')}th or {st.get('seconds')} s after "
        f"the first, whichever comes first; medians of {reps} repeats in "
        "alternating order. CPU µs/msg: whole process (librdkafka's and "
        "executor threads included) and the thread running the loop (the "
        "calling thread for the sync and C consumers). Loop lag: a 1 ms "
        "`asyncio.sleep` ticker's lateness, running alongside every asyncio "
        "consumer.")


def _consumer_table(result: dict[str, Any]) -> str:
    """A row per measured consumer: rate, share of the C ceiling, CPU and
    loop lag."""
    ceil = _cmed(result, "native", "batch", "rate")
    rows = []
    for c, v in consumer_rows(result):
        rate = _cmed(result, c, v, "rate")
        rows.append([
            CONSUMER_LABELS[(c, v)],
            _fmt(rate, "rate"),
            _fmt(_ratio(rate, ceil), "x") if c != "native" else "–",
            _fmt(_cmed(result, c, v, "cpu_proc_us"), "us"),
            _fmt(_cmed(result, c, v, "cpu_loop_us"), "us"),
            _fmt(_cmed(result, c, v, "lag_p99_ms"), "ms"),
            _fmt(_cmed(result, c, v, "lag_max_ms"), "ms"),
            _fmt(_cmed(result, c, v, "msgs"), "int"),
        ])
    return _table(["consumer (median of repeats)", "msg/s",
                   "÷ C ceiling (C batch)", "CPU µs/msg, process",
                   "CPU µs/msg, loop thread", "loop lag p99, ms",
                   "loop lag max, ms", "messages timed"], rows)


def _consumer_ratios(result: dict[str, Any]) -> list[str]:
    """aiokafka_c's rate divided by each peer's of the same API shape;
    empty when either side is missing."""
    have = set(consumer_rows(result))
    if ("aiokafka_c", "iter") not in have and (
            "aiokafka_c", "batch") not in have:
        return []
    rows = []
    for c, v in CONSUMERS:
        if c == "aiokafka_c" or (c, v) not in have:
            continue
        mine = _cmed(result, "aiokafka_c", consumer_shape(v), "rate")
        r = _ratio(mine, _cmed(result, c, v, "rate"))
        if r is not None:
            rows.append([
                CONSUMER_LABELS[("aiokafka_c", consumer_shape(v))],
                CONSUMER_LABELS[(c, v)], _fmt(r, "x")])
    if not rows:
        return []
    return ["aiokafka_c consumer throughput ÷ peer, same API shape "
            "(one message per call / a batch per call), same run:",
            "", _table(["aiokafka_c", "÷ peer", "ratio"], rows), ""]


def _consumer_footnotes(result: dict[str, Any],
                        cons: dict[str, Any]) -> list[str]:
    """How to read the loop lag, which runs hit the time cap, the notes."""
    out: list[str] = []
    if any(_cmed(result, c, v, "lag_p99_ms") is not None
           for c, v in consumer_rows(result)):
        out += ["A ticker that is never late shows the loop stays "
                "responsive while the consumer runs flat out; a p99 of "
                "tens of ms means the consumer kept the loop busy without "
                "yielding to it.", ""]
    capped = [CONSUMER_LABELS[(r["client"], r["variant"])]
              for r in result.get("runs", [])
              if r.get("ok") and r.get("variant")
              and any(m.get("capped_by") == "seconds"
                      for m in r.get("measurements", []))]
    if capped:
        names = sorted(set(capped), key=capped.index)
        out += ["Stopped by the time cap before the message cap (fewer "
                "messages timed): " + ", ".join(names) + ".", ""]
    notes = list(cons.get("notes") or [])
    for n in notes:
        out.append(f"- {n}")
    if notes:
        out.append("")
    return out


def consumer_markdown(result: dict[str, Any]) -> list[str]:
    cons = result.get("consumer") or {}
    if not cons or (cons.get("skipped") and not cons.get("setting")):
        return []
    st = cons.get("setting") or {}
    out = [f"## Consumer: {st.get('value_size')} B values, one topic of "
           f"{st.get('partitions')} partitions", ""]
    if cons.get("skipped"):
        return out + [f"Skipped: {cons['skipped']}", ""]
    fill = cons.get("prefill") or {}
    if not fill.get("ok"):
        return out + [f"Not measured: pre-filling the topic failed: "
                      f"{fill.get('error')}", ""]
    out += [_consumer_intro(result, st, fill), ""]
    out += [_consumer_table(result), ""]
    out += _consumer_ratios(result)
    out += _consumer_footnotes(result, cons)
    return out


# --------------------------------------------------------------------------
# charts
# --------------------------------------------------------------------------

COLORS = {
    "aiokafka_c": "#d62728",
    "blog": "#1f77b4",
    "confluent_aio": "#9467bd",
    "confluent_sync": "#8c564b",
    "aiokafka": "#2ca02c",
    "native": "#7f7f7f",
    "asyncio_floor": "#bcbd22",
    "aiokafka_c_example": "#ff7f0e",
}


def _save(plt: Any, fig: Any, out_dir: Path, fname: str) -> str:
    fig.tight_layout()
    fig.savefig(out_dir / fname, dpi=110)
    plt.close(fig)
    return fname


def _chart_throughput(plt: Any, result: dict[str, Any], sid: str,
                      clients: list[str], out_dir: Path, name: str) -> str:
    """Producer msg/s per scenario, a bar per client, min–max error bars."""
    summ = result["summary"].get(sid, {})
    names = [n for n in ("ff", "gather_1", "gather_10", "gather_100",
                         "gather_1000", "tasks_100", "tasks_1000")
             if n in summ] + _window_names(summ)
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(1, len(clients))
    for i, c in enumerate(clients):
        xs, ys, err_lo, err_hi = [], [], [], []
        for j, n in enumerate(names):
            v = med(result, sid, n, c, "rate")
            if v is None:
                continue
            sp = _spread(result, sid, n, c, "rate") or (v, v)
            xs.append(j + (i - (len(clients) - 1) / 2) * width)
            ys.append(v)
            err_lo.append(v - sp[0])
            err_hi.append(sp[1] - v)
        ax.bar(xs, ys, width, label=CLIENT_LABELS[c],
               color=COLORS.get(c), yerr=[err_lo, err_hi], capsize=2)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_yscale("log")
    ax.set_ylabel("messages / s (log)")
    ax.set_title(f"Producer throughput, {sid} (median, min–max of "
                 "repeats)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    return _save(plt, fig, out_dir, f"{name}_throughput.png")


def _chart_cpu(plt: Any, result: dict[str, Any], sid: str,
               clients: list[str], out_dir: Path, name: str) -> str | None:
    """CPU µs per message, process and loop thread, a panel per scenario."""
    summ = result["summary"].get(sid, {})
    cpu_names = [n for n in ("ff", "gather_1000", "tasks_1000")
                 if n in summ] + _window_names(summ)
    if not cpu_names:
        return None
    fig, axes = plt.subplots(1, len(cpu_names),
                             figsize=(4 * len(cpu_names), 4),
                             squeeze=False)
    for ax, n in zip(axes[0], cpu_names):
        cs = [c for c in clients
              if med(result, sid, n, c, "cpu_proc_us") is not None]
        proc = [med(result, sid, n, c, "cpu_proc_us") for c in cs]
        loop = [med(result, sid, n, c, "cpu_loop_us") for c in cs]
        xs = range(len(cs))
        ax.bar([x - 0.2 for x in xs], proc, 0.4, label="process",
               color=[COLORS.get(c) for c in cs])
        ax.bar([x + 0.2 for x in xs], loop, 0.4,
               label="loop thread", color=[COLORS.get(c) for c in cs],
               alpha=0.45, hatch="//")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([CLIENT_LABELS[c] for c in cs],
                           rotation=35, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(f"CPU µs/msg: {n}")
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0][0].legend(fontsize=8)
    return _save(plt, fig, out_dir, f"{name}_cpu.png")


def _chart_latency(plt: Any, result: dict[str, Any], clients: list[str],
                   out_dir: Path, name: str) -> str | None:
    """Single awaited produce p50/p99/p99.9, a panel per setting."""
    lat = [(s["id"]) for s in _settings(result)
           if "latency" in result.get("summary", {}).get(s["id"], {})]
    if not lat:
        return None
    fig, axes = plt.subplots(1, len(lat), figsize=(5.5 * len(lat), 4),
                             squeeze=False)
    for ax, sid in zip(axes[0], lat):
        cs = [c for c in clients
              if med(result, sid, "latency", c, "p50_ms") is not None]
        xs = range(len(cs))
        for k, (field, alpha) in enumerate((("p50_ms", 1.0),
                                            ("p99_ms", 0.6),
                                            ("p999_ms", 0.3))):
            ax.bar([x + (k - 1) * 0.27 for x in xs],
                   [med(result, sid, "latency", c, field) or 0
                    for c in cs], 0.27,
                   color=[COLORS.get(c) for c in cs], alpha=alpha,
                   label=field.replace("_ms", ""))
        ax.set_xticks(list(xs))
        ax.set_xticklabels([CLIENT_LABELS[c] for c in cs], rotation=35,
                           ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("ms (log)")
        ax.set_title(f"Single awaited produce, {sid}")
        ax.grid(axis="y", alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _save(plt, fig, out_dir, f"{name}_latency.png")


def _chart_consumer(plt: Any, result: dict[str, Any], out_dir: Path,
                    name: str) -> str | None:
    """Consumer msg/s and CPU µs/msg, a bar per consumer."""
    from matplotlib.patches import Patch

    crows = consumer_rows(result)
    if not crows:
        return None
    labels = [CONSUMER_LABELS[k].replace("`", "") for k in crows]
    colors = [COLORS.get(c) for c, _ in crows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5))
    ys = [_cmed(result, c, v, "rate") or 0 for c, v in crows]
    lo, hi = [], []
    sid = result["consumer"]["setting"]["id"]
    for (c, v), y in zip(crows, ys):
        sp = _spread(result, sid, f"consume_{v}", c, "rate") or (y, y)
        lo.append(y - sp[0])
        hi.append(sp[1] - y)
    xs = list(range(len(crows)))
    ax1.bar(xs, ys, 0.7, color=colors, yerr=[lo, hi], capsize=2)
    ax1.set_yscale("log")
    ax1.set_ylabel("messages / s (log)")
    ax1.set_title("Consumer throughput (median, min–max of repeats)")
    for ax in (ax1, ax2):
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3, which="both")
    proc = [_cmed(result, c, v, "cpu_proc_us") or 0 for c, v in crows]
    loop = [_cmed(result, c, v, "cpu_loop_us") or 0 for c, v in crows]
    ax2.bar([x - 0.2 for x in xs], proc, 0.4, color=colors,
            label="process")
    ax2.bar([x + 0.2 for x in xs], loop, 0.4, color=colors, alpha=0.45,
            hatch="//", label="loop thread")
    ax2.set_yscale("log")
    ax2.set_ylabel("CPU µs / message (log)")
    ax2.set_title("Consumer CPU per message")
    ax2.legend(handles=[Patch(color="#888888", label="process"),
                        Patch(facecolor="#888888", alpha=0.45,
                              hatch="//", label="loop thread")],
               fontsize=8)
    return _save(plt, fig, out_dir, f"{name}_consumer.png")


def _nan_for_none(ys: list[float | None]) -> list[float]:
    return [y if y is not None else float("nan") for y in ys]


def _web_axes(ax: Any, conc: list[int], title: str) -> None:
    ax.set_xscale("log")
    ax.set_xticks(conc)
    ax.set_xticklabels([str(c) for c in conc])
    ax.set_title(title)
    ax.set_xlabel("concurrent requests")
    ax.grid(alpha=0.3)


def _web_app_panel(ax: Any, app_name: str, app: dict[str, Any],
                   conc: list[int]) -> None:
    """One app: req/s against concurrency, a line per endpoint."""
    for ep, desc in WEB_ENDPOINTS.items():
        ys = [_web_med(app, ep, c, "rps") for c in conc]
        if all(y is None for y in ys):
            continue
        ax.plot(conc, _nan_for_none(ys), marker="o", label=f"/{ep} {desc}")
    _web_axes(ax, conc, WEB_LABELS.get(app_name, app_name))


def _web_awaited_panel(ax: Any, apps: dict[str, dict[str, Any]],
                       conc: list[int]) -> None:
    """Every app's awaited endpoint against the first app's no-op."""
    for app_name, app in apps.items():
        ys = [_web_med(app, "items1", c, "rps") for c in conc]
        ax.plot(conc, _nan_for_none(ys),
                marker="o", color=COLORS.get(app_name),
                label=f"{WEB_LABELS.get(app_name, app_name)} /items1")
    noop = [_web_med(next(iter(apps.values())), "items5", c, "rps")
            for c in conc]
    ax.plot(conc, _nan_for_none(noop),
            color="black", linestyle="--", label="no-op")
    _web_axes(ax, conc, "awaited endpoint, every client")
    ax.legend(fontsize=7)


def _chart_web(plt: Any, result: dict[str, Any], out_dir: Path,
               name: str) -> str | None:
    """Like the blog: req/s vs concurrency, a panel per app plus one with
    every app's awaited endpoint."""
    web = result.get("web") or {}
    apps = {k: a for k, a in (web.get("apps") or {}).items() if a.get("ok")}
    if not apps:
        return None
    conc = web.get("concurrency", [])
    panels = len(apps) + 1
    ncols = min(3, panels)
    nrows = -(-panels // ncols)
    fig, axes2d = plt.subplots(nrows, ncols,
                               figsize=(5.2 * ncols, 4.2 * nrows),
                               squeeze=False, sharey=True)
    axes = [a for row in axes2d for a in row]
    for extra in axes[panels:]:
        extra.set_visible(False)
    for ax, (app_name, app) in zip(axes, apps.items()):
        _web_app_panel(ax, app_name, app, conc)
    for row in axes2d:
        row[0].set_ylabel("requests / s")
    axes[0].legend(fontsize=7)
    _web_awaited_panel(axes[panels - 1], apps, conc)
    return _save(plt, fig, out_dir, f"{name}_web.png")


def write_charts(
    result: dict[str, Any], out_dir: Path, name: str
) -> list[str]:
    """Write the PNG charts there is data for into out_dir; returns their
    file names, in the order the Markdown shows them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = [c for c in _clients_in(result)
               if result["clients"][c]["available"]]
    files: list[str | None] = []
    sid = _throughput_setting(result)
    if sid:
        files.append(_chart_throughput(plt, result, sid, clients, out_dir,
                                       name))
        files.append(_chart_cpu(plt, result, sid, clients, out_dir, name))
    files.append(_chart_latency(plt, result, clients, out_dir, name))
    files.append(_chart_consumer(plt, result, out_dir, name))
    files.append(_chart_web(plt, result, out_dir, name))
    return [f for f in files if f is not None]


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    result = json.loads(path.read_text())
    charts = write_charts(result, path.parent, path.stem)
    md = markdown(result, charts)
    path.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
