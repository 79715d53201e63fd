"""Operations: overview, tasks, the dead-letter queue, breakers, schedules and workflows.

Each area has one function that gathers its data; the page and the ``/api/v1`` route both call it.
Mutating routes take :data:`~contimg.web.auth.Operator` and write the audit log.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Body, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from absurd import queries
from absurd.client import Client
from absurd.schedules import store as schedule_store
from absurd.states import TASK_STATES, TaskState
from contimg.store import audit, operations
from contimg.store.operations import Overview
from contimg.web.auth import Operator, Principal, User, audit_action
from contimg.web.dag import dag_svg
from contimg.web.db import Conn
from contimg.web.errors import ERRORS, NO_NUL
from contimg.web.fingerprint import fingerprint, normalise
from contimg.web.templating import page

router = APIRouter(responses=ERRORS)
API = "/api/v1"
Id = Annotated[int, Path(ge=1, le=2**62)]
DlqAction = Literal["retry", "skip", "requeue"]


# Overview -----------------------------------------------------------------------------------------


def get_overview(request: Request, conn: psycopg.Connection) -> Overview:
    """The overview's figures with the app's stall threshold."""
    return operations.overview(conn, request.app.state.settings.stall_after_s)


@router.get(f"{API}/overview", response_model=Overview, tags=["operations"])
def api_overview(request: Request, who: User, conn: Conn) -> Overview:
    """Queue depth by live state, oldest pending, the last hour's outcomes, live workers, last image."""
    return get_overview(request, conn)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def overview_page(request: Request, who: User, conn: Conn) -> Response:
    """The operations overview; the live panel subscribes to /events/overview."""
    return page(request, "overview.html", who, ov=get_overview(request, conn))


class Metrics(BaseModel):
    """Throughput, error rate and latency over a window, and the streaming converter's state."""

    tasks: operations.Throughput
    stream: operations.StreamStatus


def get_metrics(conn: psycopg.Connection, window_s: float) -> Metrics:
    """The metrics page's data."""
    return Metrics(
        tasks=operations.throughput(conn, window_s),
        stream=operations.stream_status(conn, max(window_s, 86400.0)),
    )


@router.get(f"{API}/metrics", response_model=Metrics, tags=["operations"])
def api_metrics(
    who: User, conn: Conn, window_s: Annotated[float, Query(ge=60, le=30 * 86400)] = 3600.0
) -> Metrics:
    """Tasks finished in the window (throughput, error rate, run and wait percentiles) and the streaming
    converter (groups by outcome, late and duplicate files, latency) over at least a day."""
    return get_metrics(conn, window_s)


@router.get("/metrics", response_class=HTMLResponse, include_in_schema=False)
def metrics_page(
    request: Request, who: User, conn: Conn, window_s: Annotated[float, Query(ge=60, le=30 * 86400)] = 3600.0
) -> Response:
    """Throughput, latency and the streaming converter."""
    return page(request, "metrics.html", who, m=get_metrics(conn, window_s), window_s=window_s)


# Tasks --------------------------------------------------------------------------------------------


class TaskPage(BaseModel):
    """One page of the task list and the cursor of the next."""

    tasks: list[dict[str, Any]]
    next_before: int | None = Field(description="pass as ?before= for the next page; null on the last")


def get_tasks(
    conn: psycopg.Connection,
    queue: str | None,
    state: TaskState | None,
    name: str | None,
    before: int | None,
    limit: int,
) -> TaskPage:
    """The task list by cursor."""
    rows, cursor = operations.task_page(conn, queue or None, state, name or None, before, limit)
    return TaskPage(tasks=rows, next_before=cursor)


@router.get(f"{API}/tasks", response_model=TaskPage, tags=["operations"])
def api_tasks(
    who: User,
    conn: Conn,
    queue: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    state: TaskState | None = None,
    name: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TaskPage:
    """Tasks newest first, filtered by queue, state and name; page with ``before``."""
    return get_tasks(conn, queue, state, name, before, limit)


@router.get("/tasks", response_class=HTMLResponse, include_in_schema=False)
def tasks_page(
    request: Request,
    who: User,
    conn: Conn,
    queue: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    state: Annotated[str | None, Query(max_length=20, pattern=NO_NUL)] = None,
    name: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The task list; filters and the cursor live in the URL."""
    chosen: Any = state if state in TASK_STATES else None
    data = get_tasks(conn, queue, chosen, name, before, 50)
    filters = {"queue": queue or "", "state": chosen or "", "name": name or ""}
    return page(request, "tasks.html", who, data=data, filters=filters, states=TASK_STATES)


class TaskDetail(BaseModel):
    """A task, every attempt with its error and log tail, and its open DLQ entry if any."""

    task: dict[str, Any]
    runs: list[dict[str, Any]] = Field(
        description="oldest first; each run's `log` is its log tail (`lines` with `at`, `level`, `text`, "
        "oldest first; `dropped`, the earlier lines not kept; `updated_at`), or null if it logged nothing"
    )
    dlq_id: int | None


def get_task(conn: psycopg.Connection, task_id: int) -> TaskDetail:
    """One task in full; NotFoundError if there is none."""
    client = Client(conn=conn)
    task = client.get_task(task_id)
    row = conn.execute(queries.OPEN_DLQ_OF_TASK, (task_id,)).fetchone()
    return TaskDetail(task=task, runs=client.runs(task_id, logs=True), dlq_id=int(row[0]) if row else None)


@router.get(API + "/tasks/{task_id}", response_model=TaskDetail, tags=["operations"])
def api_task(who: User, conn: Conn, task_id: Id) -> TaskDetail:
    """One task with every run (attempt), its error, its log tail and the result."""
    return get_task(conn, task_id)


@router.get("/tasks/{task_id}", response_class=HTMLResponse, include_in_schema=False)
def task_page(request: Request, who: User, conn: Conn, task_id: Id) -> Response:
    """One task with its attempts, each attempt's log tail then its error, params and result."""
    detail = get_task(conn, task_id)
    pretty = {
        k: json.dumps(detail.task[k], indent=2, default=str) for k in ("params", "result", "last_error")
    }
    return page(request, "task.html", who, d=detail, pretty=pretty)


# Dead-letter queue --------------------------------------------------------------------------------


class DlqGroup(BaseModel):
    """Open DLQ entries that failed the same way."""

    fingerprint: str
    task_name: str
    error_type: str | None
    pattern: str
    count: int
    first_entered_at: datetime
    last_entered_at: datetime
    entries: list[dict[str, Any]]


def dlq_groups(conn: psycopg.Connection, queue: str | None = None) -> list[DlqGroup]:
    """Open DLQ entries grouped by error fingerprint, largest group first."""
    groups: dict[str, DlqGroup] = {}
    for entry in Client(conn=conn).dlq(queue=queue, limit=5000):
        fp = fingerprint(entry["task_name"], entry["error_type"], entry["error_message"])
        entry["fingerprint"] = fp
        group = groups.get(fp)
        if group is None:
            groups[fp] = DlqGroup(
                fingerprint=fp,
                task_name=entry["task_name"],
                error_type=entry["error_type"],
                pattern=normalise(entry["error_message"]),
                count=1,
                first_entered_at=entry["entered_at"],
                last_entered_at=entry["entered_at"],
                entries=[entry],
            )
        else:
            group.count += 1
            group.last_entered_at = max(group.last_entered_at, entry["entered_at"])
            group.entries.append(entry)
    return sorted(groups.values(), key=lambda g: (-g.count, g.fingerprint))


class DlqRequest(BaseModel):
    """An operator's DLQ action on one entry."""

    reason: str | None = Field(default=None, max_length=500)
    params: Any = Field(default=None, description="retry only: replace the task's params with these")


class DlqOutcome(BaseModel):
    """What a DLQ action did."""

    dlq_id: int
    action: DlqAction
    task_id: int = Field(description="the retried task, or the new copy for a requeue")


def act_on_entry(
    conn: psycopg.Connection, who: Principal, dlq_id: int, action: DlqAction, request: DlqRequest
) -> DlqOutcome:
    """Retry, skip or requeue one entry through the engine's own functions, and audit it."""
    client = Client(conn=conn)
    if action == "retry":
        task_id = client.dlq_retry(dlq_id, who.name, request.reason, request.params)
    elif action == "skip":
        task_id = client.dlq_skip(
            dlq_id, who.name, request.reason or f"skipped by {who.name} from the dashboard"
        )
    else:
        task_id = client.dlq_requeue(dlq_id, who.name, request.reason)
    audit_action(conn, who, f"dlq.{action}", f"dlq:{dlq_id}", task_id=task_id, reason=request.reason)
    return DlqOutcome(dlq_id=dlq_id, action=action, task_id=task_id)


@router.get(f"{API}/dlq", response_model=list[DlqGroup], tags=["dead-letter queue"])
def api_dlq(
    who: User, conn: Conn, queue: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None
) -> list[DlqGroup]:
    """Open DLQ entries grouped by error fingerprint."""
    return dlq_groups(conn, queue)


@router.post(API + "/dlq/{dlq_id}/{action}", response_model=DlqOutcome, tags=["dead-letter queue"])
def api_dlq_action(
    who: Operator, conn: Conn, dlq_id: Id, action: DlqAction, body: Annotated[DlqRequest, Body()]
) -> DlqOutcome:
    """Retry (new attempts, optionally with edited params), skip, or requeue (a new task) one entry."""
    return act_on_entry(conn, who, dlq_id, action, body)


@router.get("/dlq", response_class=HTMLResponse, include_in_schema=False)
def dlq_page(request: Request, who: User, conn: Conn) -> Response:
    """The DLQ grouped by error fingerprint, with the operator's actions."""
    return page(request, "dlq.html", who, groups=dlq_groups(conn))


@router.post("/dlq/{dlq_id}/{action}", include_in_schema=False)
def dlq_form(
    who: Operator,
    conn: Conn,
    dlq_id: Id,
    action: DlqAction,
    reason: Annotated[str, Form(max_length=500)] = "",
    params: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """One entry's retry (with edited params when given), requeue or skip, from the page."""
    edited = None
    if action == "retry" and params.strip():
        try:
            edited = json.loads(params)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the edited params are not valid JSON: {exc}") from None
    act_on_entry(conn, who, dlq_id, action, DlqRequest(reason=reason or None, params=edited))
    return RedirectResponse("/dlq", status_code=303)


@router.post("/dlq-bulk", response_class=HTMLResponse, include_in_schema=False)
def dlq_bulk(
    request: Request,
    who: Operator,
    conn: Conn,
    action: Annotated[DlqAction, Form()],
    fp: Annotated[str, Form(max_length=64)],
    confirm: Annotated[int | None, Form()] = None,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Act on every entry of one fingerprint group: first a confirmation with the count, then the action,
    refused if the group changed size in between."""
    group = next((g for g in dlq_groups(conn) if g.fingerprint == fp), None)
    count = group.count if group else 0
    if confirm is None or confirm != count:
        changed = confirm is not None and confirm != count
        return page(
            request, "dlq_confirm.html", who, group=group, action=action, count=count, changed=changed
        )
    assert group is not None
    done = []
    for entry in group.entries:
        outcome = act_on_entry(conn, who, int(entry["id"]), action, DlqRequest(reason=reason or None))
        done.append(outcome.task_id)
    audit_action(conn, who, f"dlq.bulk_{action}", f"fingerprint:{fp}", count=count, task_ids=done)
    return RedirectResponse("/dlq", status_code=303)


# Breakers and limits ------------------------------------------------------------------------------


@router.get(f"{API}/breakers", response_model=list[dict[str, Any]], tags=["operations"])
def api_breakers(who: User, conn: Conn) -> list[dict[str, Any]]:
    """Every gate: concurrency limit, breaker state, running and waiting counts."""
    return Client(conn=conn).gates()


class BreakerReset(BaseModel):
    """Which breaker to close, and why."""

    key: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="reset from the dashboard", max_length=500)


@router.post(f"{API}/breakers/reset", tags=["operations"])
def api_breaker_reset(who: Operator, conn: Conn, body: BreakerReset) -> dict[str, str]:
    """Close a breaker (the workers read its state from the database, so they see it at once)."""
    Client(conn=conn).set_breaker(body.key, "closed", f"{body.reason} ({who.name})")
    audit_action(conn, who, "breaker.reset", f"gate:{body.key}", reason=body.reason)
    return {"key": body.key, "state": "closed"}


class GateLimit(BaseModel):
    """A gate's new concurrency limit."""

    key: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    max_running: int | None = Field(ge=1, le=100_000, description="tasks of the gate at once; null: no limit")


class GateLimitSet(GateLimit):
    """The limit set, and the one it replaced."""

    previous: int | None


@router.post(f"{API}/breakers/limit", response_model=GateLimitSet, tags=["operations"])
def api_gate_limit(who: Operator, conn: Conn, body: GateLimit) -> GateLimitSet:
    """Set a gate's concurrency limit; workers apply it from their next claim."""
    previous = Client(conn=conn).set_gate_limit(body.key, body.max_running)
    audit_action(conn, who, "gate.limit", f"gate:{body.key}", max_running=body.max_running, previous=previous)
    return GateLimitSet(key=body.key, max_running=body.max_running, previous=previous)


@router.get("/breakers", response_class=HTMLResponse, include_in_schema=False)
def breakers_page(request: Request, who: User, conn: Conn) -> Response:
    """Gates: limits, breaker states and their recent transitions."""
    client = Client(conn=conn)
    gates = client.gates()
    transitions = {g["key"]: client.gate(g["key"], transitions=5)["transitions"] for g in gates}
    return page(request, "breakers.html", who, gates=gates, transitions=transitions)


@router.post("/breakers/reset", include_in_schema=False)
def breaker_reset_form(who: Operator, conn: Conn, key: Annotated[str, Form(max_length=200)]) -> Response:
    """Close a breaker from the page."""
    api_breaker_reset(who, conn, BreakerReset(key=key))
    return RedirectResponse("/breakers", status_code=303)


@router.post("/breakers/limit", include_in_schema=False)
def gate_limit_form(
    who: Operator,
    conn: Conn,
    key: Annotated[str, Form(max_length=200)],
    max_running: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Set or clear (empty) a gate's concurrency limit from the page."""
    text = max_running.strip()
    if text and not text.isdigit():
        raise ValueError(f"the limit must be a whole number of tasks, or empty for none, not {text!r}")
    api_gate_limit(who, conn, GateLimit(key=key, max_running=int(text) if text else None))
    return RedirectResponse("/breakers", status_code=303)


# Schedules ----------------------------------------------------------------------------------------


@router.get(f"{API}/schedules", response_model=list[dict[str, Any]], tags=["operations"])
def api_schedules(who: User, conn: Conn) -> list[dict[str, Any]]:
    """Stored schedules with their trigger, next and last fire."""
    return [_schedule_row(r) for r in schedule_store.list_schedules(conn)]


def _schedule_row(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "description", "enabled", "trigger_kind", "cron", "timezone", "interval_s", "event_name")
    return {k: row.get(k) for k in (*keep, "next_fire_at", "last_fired_at")}


class ScheduleAction(BaseModel):
    """A schedule to enable, disable or fire now."""

    name: str = Field(min_length=1, max_length=200)
    action: Literal["enable", "disable", "trigger"]


@router.post(f"{API}/schedules/action", tags=["operations"])
def api_schedule_action(who: Operator, conn: Conn, body: ScheduleAction) -> dict[str, Any]:
    """Enable or disable a schedule, or fire it now (returns the workflow it started)."""
    workflow = None
    if body.action == "trigger":
        _, workflow = schedule_store.trigger_now(conn, body.name, who.name)
    else:
        schedule_store.set_enabled(conn, body.name, body.action == "enable")
    audit_action(conn, who, f"schedule.{body.action}", f"schedule:{body.name}", workflow_id=workflow)
    return {"name": body.name, "action": body.action, "workflow_id": workflow}


@router.get("/schedules", response_class=HTMLResponse, include_in_schema=False)
def schedules_page(request: Request, who: User, conn: Conn) -> Response:
    """Schedules with their next and last fire."""
    return page(request, "schedules.html", who, schedules=api_schedules(who, conn))


@router.post("/schedules/action", include_in_schema=False)
def schedule_form(
    who: Operator,
    conn: Conn,
    name: Annotated[str, Form(max_length=200)],
    action: Annotated[Literal["enable", "disable", "trigger"], Form()],
) -> Response:
    """Enable, disable or trigger a schedule from the page."""
    api_schedule_action(who, conn, ScheduleAction(name=name, action=action))
    return RedirectResponse("/schedules", status_code=303)


# Workflows ----------------------------------------------------------------------------------------


@router.get(f"{API}/workflows", response_model=list[dict[str, Any]], tags=["operations"])
def api_workflows(
    who: User, conn: Conn, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """Recent workflows with their derived state."""
    return Client(conn=conn).list_workflows(limit=limit)


@router.get(API + "/workflows/{workflow_id}", response_model=dict[str, Any], tags=["operations"])
def api_workflow(who: User, conn: Conn, workflow_id: Id) -> dict[str, Any]:
    """A workflow's state and its tasks with their dependencies."""
    return Client(conn=conn).workflow(workflow_id)


@router.get("/workflows", response_class=HTMLResponse, include_in_schema=False)
def workflows_page(request: Request, who: User, conn: Conn) -> Response:
    """Recent workflows."""
    return page(request, "workflows.html", who, workflows=Client(conn=conn).list_workflows(limit=100))


@router.get("/workflows/{workflow_id}", response_class=HTMLResponse, include_in_schema=False)
def workflow_page(request: Request, who: User, conn: Conn, workflow_id: Id) -> Response:
    """One workflow as a DAG of its steps."""
    wf = Client(conn=conn).workflow(workflow_id)
    return page(request, "workflow.html", who, wf=wf, svg=dag_svg(wf["task_rows"]))


# Audit log ----------------------------------------------------------------------------------------


@router.get(f"{API}/audit", response_model=list[dict[str, Any]], tags=["operations"])
def api_audit(
    who: User, conn: Conn, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The newest audit-log rows: every mutating action, allowed or refused."""
    return audit.recent(conn, limit)


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(request: Request, who: User, conn: Conn) -> Response:
    """The audit log."""
    return page(request, "audit.html", who, rows=audit.recent(conn, 200))
