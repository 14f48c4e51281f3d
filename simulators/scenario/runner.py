"""Plays a scenario: starts its world, runs the timeline, checks expectations as they come due,
shows progress, and returns a pass/fail result per expectation."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from simulators.broker import BrokerError
from simulators.scenario.checks import Checker, Outcome, Verdict
from simulators.scenario.schema import (
    AdvanceAction,
    ApiAction,
    ContactAction,
    DeviceFaultAction,
    LinkAction,
    ProcessAction,
    Scenario,
    SetValueAction,
    Step,
    TicketExpectation,
    TrapAction,
)
from simulators.scenario.world import TRAP_COMMUNITY, TRAP_ENGINE_ID, External, World, WorldError
from simulators.stack import StackError

Say = Callable[[str], None]
POLL_S = 0.5
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_NOW = re.compile(r"^now(?:([+-])(\d+(?:\.\d+)?)([smhd]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class StepError(RuntimeError):
    """A timeline step could not be carried out (the scenario stops there)."""


@dataclass
class ScenarioResult:
    """What one scenario run found."""

    name: str
    path: Path
    outcomes: list[Outcome] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    workdir: Path | None = None

    @property
    def passed(self) -> bool:
        """No error and every expectation passed."""
        return self.error is None and all(o.verdict is Verdict.PASSED for o in self.outcomes)


def run_scenario(
    scenario: Scenario,
    *,
    path: Path,
    workdir: Path,
    say: Say,
    external: External | None = None,
) -> ScenarioResult:
    """Run one scenario in ``workdir`` and stop everything it started."""
    result = ScenarioResult(scenario.name, path, workdir=workdir)
    result.outcomes = [Outcome(i, e) for i, e in enumerate(scenario.expectations)]
    start = time.monotonic()
    try:
        world = World(scenario, workdir, external=external)
    except WorldError as err:
        result.error = str(err)
        say(f"  ERROR {err}")
        _fail_pending(result)
        return result
    try:
        world.start(say)
        _play(world, scenario, result, say)
    except (StackError, BrokerError, StepError, WorldError, OSError) as err:
        result.error = str(err)
        say(f"  ERROR {err}")
    finally:
        world.stop()
        result.duration_s = time.monotonic() - start
    _fail_pending(result)
    return result


def _fail_pending(result: ScenarioResult) -> None:
    for outcome in result.outcomes:
        if outcome.verdict is Verdict.PENDING:
            outcome.verdict = Verdict.FAILED
            outcome.seen = f"not checked: {result.error}" if result.error else outcome.seen


def _play(world: World, scenario: Scenario, result: ScenarioResult, say: Say) -> None:
    checker = Checker(
        api=world.api,
        db_url=world.db_url,
        outboxes=lambda: [(s.agent.agent_id, s.agent.outbox_path) for s in world.sites.values()],
    )
    steps = sorted(scenario.timeline, key=lambda s: s.at)
    saved: dict[str, Any] = {}
    t0 = time.monotonic()
    say(f"  running for up to {scenario.duration_s:.0f} s")
    while True:
        elapsed = time.monotonic() - t0
        while steps and steps[0].at <= elapsed:
            step = steps.pop(0)
            say(f"  [+{elapsed:5.1f}s] {_describe_step(step)}")
            _do(world, step, saved)
        _evaluate(checker, result.outcomes, time.monotonic() - t0, say)
        decided = all(o.verdict is not Verdict.PENDING for o in result.outcomes)
        if (decided and not steps) or elapsed >= scenario.duration_s:
            return
        time.sleep(POLL_S)


def _evaluate(checker: Checker, outcomes: list[Outcome], elapsed: float, say: Say) -> None:
    for outcome in outcomes:
        e = outcome.expectation
        if outcome.verdict is not Verdict.PENDING or elapsed < e.after_s:
            continue
        zero = isinstance(e, TicketExpectation) and e.count == 0
        never = e.never or zero
        try:
            ok, seen = checker.check(e)
            if e.never:
                ok = not ok  # "never X" holds while X does not
        except httpx.HTTPError as err:
            ok, seen = (True, "") if never else (False, f"API unreachable: {err}")
            # A collector down for the scenario's sake is not a verdict either way.
            if never:
                continue
        outcome.seen = seen
        closing = elapsed >= e.after_s + e.within_s
        if never and not ok:
            _decide(outcome, Verdict.FAILED, elapsed, say)
        elif (never and closing) or (not never and ok):
            _decide(outcome, Verdict.PASSED, elapsed, say)
        elif not never and closing:
            _decide(outcome, Verdict.FAILED, elapsed, say)


def _decide(outcome: Outcome, verdict: Verdict, elapsed: float, say: Say) -> None:
    outcome.verdict, outcome.at_s = verdict, elapsed
    mark = "PASS" if verdict is Verdict.PASSED else "FAIL"
    say(f"  [+{elapsed:5.1f}s] {mark} {outcome.title} -- {outcome.seen}")


def _do(world: World, step: Step, saved: dict[str, Any]) -> None:
    action = step.do
    try:
        if isinstance(action, ContactAction):
            world.stack.set_contact(action.agent, action.point, alarm=action.active)
        elif isinstance(action, SetValueAction):
            site = world.sites[action.agent]
            target: Any = site.modbus.get(action.device) or site.snmp.get(action.device)
            _require(target, action.agent, action.device).set(action.point, action.value)
        elif isinstance(action, DeviceFaultAction):
            site = world.sites[action.agent]
            target = site.modbus.get(action.device) or site.snmp.get(action.device)
            _require(target, action.agent, action.device).set_fault(action.fault)
        elif isinstance(action, TrapAction):
            _trap(world, action)
        elif isinstance(action, LinkAction):
            world.set_link(action.agent, up=action.state == "up")
        elif isinstance(action, ProcessAction):
            _process(world, action)
        elif isinstance(action, ApiAction):
            _api(world, action, saved)
        elif isinstance(action, AdvanceAction):
            world.advance(action.total_s)
    except (StackError, BrokerError, StepError):
        raise
    except Exception as err:
        raise StepError(f"step at +{step.at:.0f} s ({_describe_step(step)}) failed: {err}") from err


def _require(target: Any, agent: str, device: str) -> Any:
    if target is None:
        raise StepError(f"agent {agent}: device {device} is not a simulated Modbus or SNMP device")
    return target


def _trap(world: World, action: TrapAction) -> None:
    site = world.sites[action.agent]
    device = _require(site.snmp.get(action.device), action.agent, action.device)
    if site.trap_port is None:
        raise StepError(f"agent {action.agent} has no trap listener (no traps: in its site file)")
    device.send_trap(
        target_port=site.trap_port,
        trap_oid=action.trap_oid,
        varbinds=action.varbinds,
        version=action.version,
        community=TRAP_COMMUNITY,
        engine_id=TRAP_ENGINE_ID,
    )


def _process(world: World, action: ProcessAction) -> None:
    stack = world.stack
    name = action.action
    if world.external is not None and not name.startswith("agent_"):
        raise StepError(f"{name}: the broker and collector are external, not the runner's")
    if name == "broker_stop":
        stack.broker.stop()
    elif name == "broker_start":
        stack.broker.start()
    elif name == "broker_kill":
        stack.broker.kill()
    elif name == "collector_kill":
        stack.collector.kill()
    elif name == "collector_start":
        stack.start_collector()
    elif name == "collector_restart":
        stack.collector.stop()
        stack.start_collector()
    else:
        agent = world.sites[str(action.agent)].agent
        if name == "agent_kill":
            agent.process.kill()
        else:
            agent.process.start()


def _api(world: World, action: ApiAction, saved: dict[str, Any]) -> None:
    path = _render(action.path, world, saved)
    body = _render(action.body, world, saved) if action.body is not None else None
    response = world.api(action.method, str(path), json=body, as_client=action.as_client)
    expected = action.expect_status
    if (expected is not None and response.status_code != expected) or (
        expected is None and response.status_code >= 400
    ):
        raise StepError(
            f"{action.method} {path} answered {response.status_code}"
            f"{f' (expected {expected})' if expected else ''}: {response.text[:300]}"
        )
    if action.save_as:
        saved[action.save_as] = response.json()


def _render(value: Any, world: World, saved: dict[str, Any]) -> Any:
    """Fill ``{now+2d}`` and ``{name.field}`` placeholders in strings, recursively."""
    if isinstance(value, dict):
        return {k: _render(v, world, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, world, saved) for v in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        return _lookup(whole.group(1), world, saved)
    return _PLACEHOLDER.sub(lambda m: str(_lookup(m.group(1), world, saved)), value)


def _lookup(name: str, world: World, saved: dict[str, Any]) -> Any:
    now = _NOW.match(name)
    if now:
        sign, amount, unit = now.groups()
        moment = world.clock.now()
        if amount:
            delta = timedelta(**{_UNITS[unit]: float(amount)})
            moment = moment + delta if sign == "+" else moment - delta
        return moment.isoformat().replace("+00:00", "Z")
    head, *path = name.split(".")
    if head not in saved:
        raise StepError(f"placeholder {{{name}}}: nothing saved as {head!r} (save_as: {head})")
    found: Any = saved[head]
    for part in path:
        if isinstance(found, list) and part.isdigit():
            found = found[int(part)]
        elif isinstance(found, dict) and part in found:
            found = found[part]
        else:
            raise StepError(f"placeholder {{{name}}}: {part!r} not in the saved answer")
    return found


def _describe_step(step: Step) -> str:
    action = step.do
    fields = action.model_dump(exclude={"action"}, exclude_none=True, exclude_defaults=True)
    detail = " ".join(f"{k}={v}" for k, v in fields.items() if k != "body")
    return f"{action.action} {detail}".strip()
