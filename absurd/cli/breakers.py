"""``absurd breaker`` and ``absurd limit``: the circuit breakers and concurrency limits of gates.

A gate guards one key (a task name, or a resource such as ``casa``); it can hold a concurrency limit,
a circuit breaker, or both. Changing one never resets the other.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from absurd.cli.dlq import actor
from absurd.cli.toolkit import App, Dsn, JsonOut, cell, client, console, emit_json, print_rows, table
from absurd.client import Client
from absurd.errors import AbsurdError, NotFoundError, UsageError
from absurd.options import GateConfig

breaker_app = App(help="Circuit breakers: list, show, configure, trip and reset.")
limit_app = App(help="Concurrency limits: at most N running tasks per key.")

# The option that sets each GateConfig field, so validation errors name what the user typed.
OPTION_OF = {
    "failure_threshold": "--failures",
    "window_s": "--window-s",
    "failure_rate": "--failure-rate",
    "min_calls": "--min-calls",
    "base_cooldown_s": "--cooldown-s",
    "max_cooldown_s": "--max-cooldown-s",
    "half_open_trials": "--trials",
    "max_running": "N",
    "key": "KEY",
}


def _existing(c: Client, key: str) -> GateConfig | None:
    try:
        row = c.gate(key, transitions=0)
    except NotFoundError:
        return None
    return GateConfig(**{field: row[field] for field in GateConfig.model_fields})


def _upsert(c: Client, key: str, changes: dict[str, Any]) -> GateConfig:
    """Write the gate ``key`` with ``changes`` applied to its current settings (or the defaults)."""
    current = _existing(c, key)
    base = current.model_dump() if current else {"key": key}
    try:
        config = GateConfig(**{**base, **{k: v for k, v in changes.items() if v is not None}})
    except ValidationError as exc:
        problems = [
            f"{OPTION_OF.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}" for err in exc.errors()
        ]
        raise UsageError("; ".join(problems)) from None
    c.configure_gate(config)
    return config


def _gate_rows(c: Client, keep: str) -> list[dict[str, Any]]:
    return [r for r in c.gates() if r[keep] is not None and r[keep] is not False]


@breaker_app.command("list")
def list_breakers(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """Every circuit breaker with its state, cooldown and running/waiting counts."""
    with client(dsn) as c:
        rows = _gate_rows(c, "breaker_enabled")
    print_rows(
        rows,
        json_out,
        "circuit breakers",
        ["key", "state", "until", "fails", "window", "cool", "run", "wait", "limit"],
        lambda r: [
            r["key"],
            r["breaker_state"],
            r["cooldown_until"] if r["breaker_state"] == "open" else None,
            r["failure_threshold"],
            f"{r['window_s']:g}s",
            f"{r['cooldown_s'] or r['base_cooldown_s']:g}s",
            r["running"],
            r["waiting"],
            r["max_running"],
        ],
    )


@breaker_app.command("show")
def show_breaker(key: str, dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """One gate: its breaker settings and state, running and waiting tasks, and recent transitions."""
    with client(dsn) as c:
        gate = c.gate(key)
        counts = next((r for r in c.gates() if r["key"] == key), {"running": 0, "waiting": 0})
    gate["running"], gate["waiting"] = counts["running"], counts["waiting"]
    if json_out:
        emit_json(gate)
        return
    state = gate["breaker_state"] if gate["breaker_enabled"] else "no breaker"
    console.print(f"[bold]gate {escape(key)}[/bold]: [bold]{state}[/bold]")
    if gate["breaker_state"] == "open":
        console.print(f"cooldown until {cell(gate['cooldown_until'])} ({gate['cooldown_s']:g} s)")
    rate = (
        f", or a failure rate of {gate['failure_rate']:g} over {gate['min_calls']} calls"
        if gate["failure_rate"]
        else ""
    )
    if gate["breaker_enabled"]:
        console.print(
            f"opens at {gate['failure_threshold']} failures within {gate['window_s']:g} s{rate}; "
            f"cooldown {gate['base_cooldown_s']:g} s doubling to {gate['max_cooldown_s']:g} s; "
            f"{gate['half_open_trials']} trial task(s) when half-open",
            highlight=False,
        )
    limit = gate["max_running"] if gate["max_running"] is not None else "no limit"
    console.print(f"running {gate['running']}, waiting {gate['waiting']}; concurrency limit: {limit}")
    table(
        "recent transitions",
        ["at", "from", "to", "reason"],
        [[t["at"], t["from_state"], t["to_state"], t["reason"]] for t in gate["transitions"]],
    )


def _force(key: str, state: str, reason: str | None, dsn: str | None) -> None:
    with client(dsn) as c:
        gate = c.gate(key, transitions=0)
        if state == "open" and not gate["breaker_enabled"]:
            raise AbsurdError(
                f"gate {key!r} has no circuit breaker; set one up with: absurd breaker configure {key}"
            )
        if gate["breaker_state"] == state:
            console.print(f"breaker {escape(key)} is already {state}")
            return
        verb = "tripped" if state == "open" else "reset"
        c.set_breaker(key, state, reason or f"{verb} by hand by {actor(None)}")
    console.print(f"breaker {escape(key)} {verb}: {gate['breaker_state']} → {state}")


@breaker_app.command("trip")
def trip(
    key: str,
    reason: Annotated[str | None, typer.Option(help="Why; kept in the transition history.")] = None,
    dsn: Dsn = None,
) -> None:
    """Open a breaker by hand: its tasks wait until the cooldown passes or it is reset."""
    _force(key, "open", reason, dsn)


@breaker_app.command("reset")
def reset(
    key: str,
    reason: Annotated[str | None, typer.Option(help="Why; kept in the transition history.")] = None,
    dsn: Dsn = None,
) -> None:
    """Close a breaker by hand: its waiting tasks can be claimed again at once."""
    _force(key, "closed", reason, dsn)


@breaker_app.command("configure")
def configure(
    key: str,
    failures: Annotated[
        int | None, typer.Option(help="Open after this many failures within --window-s.")
    ] = None,
    window_s: Annotated[float | None, typer.Option(help="Seconds over which failures are counted.")] = None,
    failure_rate: Annotated[
        float | None, typer.Option(help="Or open at this failure rate (0-1) over --min-calls calls.")
    ] = None,
    min_calls: Annotated[int | None, typer.Option(help="Calls needed before --failure-rate applies.")] = None,
    cooldown_s: Annotated[float | None, typer.Option(help="Open → half-open after this long.")] = None,
    max_cooldown_s: Annotated[
        float | None, typer.Option(help="Cooldowns double after failed trials, up to this.")
    ] = None,
    trials: Annotated[int | None, typer.Option(help="Trial tasks let through while half-open.")] = None,
    dsn: Dsn = None,
) -> None:
    """Create or change the circuit breaker of KEY (a task name or a gate key).

    Options not given keep their current value (or the default for a new breaker); a concurrency
    limit on the same key is kept.
    """
    changes = {
        "breaker_enabled": True,
        "failure_threshold": failures,
        "window_s": window_s,
        "failure_rate": failure_rate,
        "min_calls": min_calls,
        "base_cooldown_s": cooldown_s,
        "max_cooldown_s": max_cooldown_s,
        "half_open_trials": trials,
    }
    with client(dsn) as c:
        config = _upsert(c, key, changes)
    console.print(
        f"breaker {escape(key)}: opens at {config.failure_threshold} failures within {config.window_s:g} s, "
        f"cooldown {config.base_cooldown_s:g}-{config.max_cooldown_s:g} s, {config.half_open_trials} trial(s)"
    )


@limit_app.command("set")
def set_limit(
    key: str,
    n: Annotated[int, typer.Argument(min=1, help="At most this many of KEY's tasks run at once.")],
    dsn: Dsn = None,
) -> None:
    """Limit how many tasks of KEY (a task name or a gate key) run at once; a breaker on it is kept.

    Applies to tasks spawned from now on, and to queued tasks already gated on KEY.
    """
    with client(dsn) as c:
        _upsert(c, key, {"max_running": n})
    console.print(f"limit {escape(key)}: at most {n} running")


@limit_app.command("list")
def list_limits(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """Every concurrency limit with its running and waiting counts."""
    with client(dsn) as c:
        rows = _gate_rows(c, "max_running")
    print_rows(
        rows,
        json_out,
        "concurrency limits",
        ["key", "limit", "running", "waiting", "breaker"],
        lambda r: [
            r["key"],
            r["max_running"],
            r["running"],
            r["waiting"],
            r["breaker_state"] if r["breaker_enabled"] else None,
        ],
    )
