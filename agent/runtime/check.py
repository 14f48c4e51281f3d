"""``shelterwatch agent check``: one screen for the technician, and an exit code for scripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.runtime.clockwatch import SKEW_RAISE_S


def problems(status: dict[str, Any]) -> list[str]:
    """What is wrong, in words (empty: all good)."""
    found = []
    if not status["broker_connected"]:
        found.append("broker not reachable")
    elif not status["collector_up"]:
        found.append("no collector instance online")
    outbox = status["outbox"]
    if outbox["critical"]:
        found.append("outbox critical: the alarm reserve is full")
    if outbox["recovered"]:
        found.append("outbox was recovered from a corrupt file at start")
    if outbox.get("storage_error"):
        found.append(
            f"outbox cannot be written ({outbox['storage_error']}):"
            f" {outbox.get('volatile_pending', 0)} events kept in memory"
        )
    elif status.get("storage_fault") == "low_space":
        found.append(f"data filesystem nearly full: {_mib(outbox.get('free_bytes'))} free")
    if outbox.get("volatile_lost"):
        found.append(
            f"{outbox['volatile_lost']} events lost since start: the outbox could not write"
            " and the in-memory queue was full"
        )
    if status.get("config_error"):
        found.append(
            f"configuration refused, the previous one still runs: {status['config_error']}"
        )
    found += status.get("task_problems", [])
    found += [
        f"task {t['task']} failing: {t.get('last_error') or 'restarting'}"
        for t in status.get("tasks", [])
        if t["failing"] and not t["essential"]
    ]
    found += [
        f"device {d['device_id']}: {d.get('last_error') or 'not answering'}"
        for d in status["devices"]
        if not d["ok"]
    ]
    found += [
        f"device {a['equipment_id']}: profile_mismatch, it does not serve a point its profile"
        " requires (see the points UNKNOWN below)"
        for a in status.get("active_alarms", [])
        if a["alarm_type"] == "profile_mismatch"
    ]
    return found


def warnings(status: dict[str, Any]) -> list[str]:
    """Worth knowing, not wrong: the agent works around them."""
    found = []
    if not status["clock_synced"]:
        found.append("clock not synchronised: timestamps are flagged, the collector uses its own")
    offset = status.get("clock_offset_s")
    if offset is not None and abs(offset) > SKEW_RAISE_S:
        found.append(
            f"clock {-offset:+.0f} s off the collector's (clock_skew alarm): the collector"
            " corrects the times, but check the time source"
        )
    if not status.get("acks_authenticated", True):
        found.append("acks not authenticated: no mqtt.ack_key_file in the site file")
    found += [
        f"{h['kind']} listener on {h['bind']}:{h['port']} rejected {_rejected(h['rejected'])}:"
        " a sender with the wrong credentials, or not in the site file"
        for h in status.get("listeners", [])
        if h["rejected"]
    ]
    if status.get("acks_rejected", 0):
        found.append(
            f"{status['acks_rejected']} acks rejected since start: forged acks on the broker,"
            " or a collector with the wrong ack secret"
        )
    found += [
        f"device {d['device_id']} answers but does not serve: {', '.join(d['points_unknown'])}"
        " (values unknown)"
        for d in status.get("devices", [])
        if d["ok"] and d.get("points_unknown")
    ]
    return found


def render(status: dict[str, Any]) -> str:
    """The check screen."""
    o = status["outbox"]
    age = o["oldest_unacked_age_s"]
    lines = [
        f"shelterwatch agent {status['agent_id']}  site {status['site_id']}  boot {status['boot']}"
        f"  v{status['agent_version']}",
        f"config   {status['config_hash']}",
        f"clock    {'synchronised' if status['clock_synced'] else 'NOT synchronised'}"
        f"  {status['now']}  {_offset(status.get('clock_offset_s'))}",
        f"broker   {'connected' if status['broker_connected'] else 'UNREACHABLE'}"
        f"   collector {'up' if status['collector_up'] else 'DOWN'}"
        f"   acks {_acks(status)}",
        f"outbox   {o['events_pending']} events, {o['telemetry_pending']} telemetry pending;"
        f" oldest unacked {'-' if age is None else f'{age:.0f} s'}; thinned {o['thinned_total']}"
        f"{'; CRITICAL' if o['critical'] else ''}",
        f"storage  {'WRITES FAIL' if o.get('storage_error') else 'writable'};"
        f" last write {_short(o.get('last_write'))}; {_mib(o.get('free_bytes'))} free;"
        f" {o.get('storage_errors', 0)} errors; in memory {o.get('volatile_pending', 0)},"
        f" lost {o.get('volatile_lost', 0)}",
        f"tasks    {_tasks(status.get('tasks', []))}",
        "",
        f"{'device':<14}{'state':<8}{'last ok':<22}{'failures':<10}last error",
    ]
    for d in status["devices"]:
        lines.append(
            f"{d['device_id']:<14}{'ok' if d['ok'] else 'FAIL':<8}{_short(d.get('last_ok')):<22}"
            f"{d['consecutive_failures']:<10}{d.get('last_error') or ''}"
        )
    if status.get("listeners"):
        lines += ["", f"{'listener':<12}{'address':<22}{'received':<10}{'accepted':<10}rejected"]
        for h in status["listeners"]:
            lines.append(
                f"{h['kind']:<12}{h['bind'] + ':' + str(h['port']):<22}{h['received']:<10}"
                f"{h['accepted']:<10}{_rejected(h['rejected'])}"
            )
    lines += ["", f"{'device':<14}{'point':<18}{'value':<12}alarm"]
    for p in status["points"]:
        lines.append(
            f"{p['device_id']:<14}{p['point']:<18}"
            f"{'UNKNOWN' if p.get('unknown') else _value(p['value']):<12}"
            f"{'ACTIVE' if p['alarm_active'] else '-'}"
        )
    found = problems(status)
    lines += ["", "OK: nothing wrong" if not found else "PROBLEMS:"]
    lines += [f"  - {p}" for p in found]
    lines += [f"  (warning) {w}" for w in warnings(status)]
    return "\n".join(lines)


def _rejected(by_reason: dict[str, int]) -> str:
    if not by_reason:
        return "0"
    total = sum(by_reason.values())
    return f"{total} (" + ", ".join(f"{r}: {n}" for r, n in sorted(by_reason.items())) + ")"


def _mib(free: int | None) -> str:
    return "? MiB" if free is None else f"{free / 1024 / 1024:.1f} MiB"


def _tasks(tasks: list[dict[str, Any]]) -> str:
    failing = [t["task"] for t in tasks if t["failing"] or not t["running"]]
    if not failing:
        return f"{len(tasks)} running"
    return f"{len(tasks) - len(failing)} running; FAILING: {', '.join(failing)}"


def _offset(offset: float | None) -> str:
    if offset is None:
        return "(not measured against the collector yet)"
    return f"({-offset:+.3f} s against the collector)"


def _acks(status: dict[str, Any]) -> str:
    signed = "signed" if status.get("acks_authenticated", True) else "NOT authenticated"
    return f"{signed}, {status.get('acks_rejected', 0)} rejected"


def _short(iso: str | None) -> str:
    if not iso:
        return "never"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "closed" if value else "open"
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)
