"""The calibration wizard: Configure (the MS, the mode, the reference antenna) → Run (the real
``solve-calibration`` task, its state and attempts pushed live) → Review (the solve's plots and its QA
checks) → Apply (``apply-calibration`` of that solve to an MS its validity covers).

Solve and apply are queued through the engine with the tasks' own parameter models, by operators only,
and audited. Plots are served by caltable id and kind: a page never holds a server path to fetch.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from absurd.client import Client
from contimg.store import calibration as store
from contimg.store import operations, products
from contimg.store.calibration import Caltable
from contimg.tasks.params import ApplyParams, SolveParams
from contimg.tasks.registry import registry
from contimg.web.auth import Operator, Principal, User, audit_action
from contimg.web.db import Conn
from contimg.web.errors import ERRORS
from contimg.web.live import live_stream
from contimg.web.ops import Id
from contimg.web.templating import page, templates
from science.applycal import why_not_applicable
from science.calibrate import CalibrationQA, QACheck
from science.calibrators import calibrators_in_beam, load_catalogue
from science.constants import BAND_CENTRE_HZ

router = APIRouter(responses=ERRORS)
API = "/api/v1"
SOLVE = "solve-calibration"
APPLY = "apply-calibration"
PlotKind = Literal["bandpass_amplitude", "gain_phase", "gain_amplitude", "flag_fractions"]
PLOT_TITLES: dict[str, str] = {
    "bandpass_amplitude": "Bandpass amplitude vs frequency",
    "gain_phase": "Gain phase vs time",
    "gain_amplitude": "Gain amplitude per antenna",
    "flag_fractions": "Flagged calibrator data",
}
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG"}}
# A solve in progress changes state without a NOTIFY (claims do not send one): re-read this often.
RUN_POLL_S = 2.0
ANTENNA = r"^[A-Za-z0-9_.-]{1,32}$"


class SolveRequest(BaseModel):
    """What the wizard's Configure step asks: the MS, the mode, and the reference antenna."""

    ms_path: FilePath = Field(
        description="a Measurement Set in products.ms_index holding a calibrator transit"
    )
    mode: Literal["bandpass", "full"] = Field(
        default="full", description="bandpass only, or bandpass + gains"
    )
    refant: str | None = Field(default=None, pattern=ANTENNA, description="default: chosen automatically")
    caltable_dir: FilePath | None = Field(
        default=None, description="default: a 'caltables' directory beside the MS's directory"
    )


class ApplyRequest(BaseModel):
    """Apply a reviewed solve to one Measurement Set (by default the one it was solved on)."""

    ms_path: FilePath | None = Field(default=None, description="default: the MS the solve was made on")


class Queued(BaseModel):
    """The task queued."""

    task_id: int


class Review(BaseModel):
    """A solve's progress and, once it is done, its caltable with the QA checks."""

    task: dict[str, Any]
    runs: list[dict[str, Any]]
    caltable: Caltable | None
    checks: list[QACheck]
    plots: list[str] = Field(description="plot kinds available at .../caltables/{id}/plots/{kind}.png")
    replaced_by: int | None = Field(
        default=None, description="the later solve task whose caltable replaced this one's"
    )


def default_caltable_dir(ms_path: FilePath) -> FilePath:
    """Caltables beside the MS directory, as the streaming layout keeps them (…/ms/x.ms → …/caltables)."""
    return ms_path.parent.parent / "caltables"


def submit_solve(conn: psycopg.Connection, who: Principal, body: SolveRequest) -> Queued:
    """Queue ``solve-calibration`` on an MS the products database knows; audited."""
    ms = str(body.ms_path)
    if products.find_ms(conn, ms) is None:
        raise ValueError(f"ms_path {ms} is not in products.ms_index; convert it first")
    if not body.ms_path.is_dir():
        raise ValueError(f"ms_path {ms} is recorded but no longer on disk")
    params = SolveParams(
        ms_path=body.ms_path,
        caltable_dir=body.caltable_dir or default_caltable_dir(body.ms_path),
        mode=body.mode,
        refant=body.refant or None,
    )
    task_id = Client(conn=conn, registry=registry).spawn(SOLVE, params.model_dump(mode="json")).task_id
    audit_action(conn, who, "calibration.solve", ms, task_id=task_id, mode=body.mode, refant=body.refant)
    return Queued(task_id=task_id)


def _task_named(client: Client, task_id: int, name: str) -> dict[str, Any]:
    task = client.get_task(task_id)
    if task["name"] != name:
        raise LookupError(f"task {task_id} is a {task['name']} task, not {name}")
    return task


def _caltable(conn: psycopg.Connection, caltable_id: int) -> Caltable:
    found = store.caltable(conn, caltable_id)
    if found is None:
        raise LookupError(f"no caltable with id {caltable_id}")
    return found


def checks_of(caltable: Caltable) -> list[QACheck]:
    """The stored QA verdict as one check per metric."""
    return CalibrationQA.model_validate(caltable.qa).checks()


def review(conn: psycopg.Connection, task_id: int) -> Review:
    """A solve task's state, attempts and (when completed) caltable, checks and plots."""
    client = Client(conn=conn)
    task = _task_named(client, task_id, SOLVE)
    caltable = store.caltable_of_task(conn, task_id)
    replaced_by = None
    if caltable is None and task["state"] == "completed":
        params = task["params"]
        later = store.caltable_for(conn, str(params["ms_path"]), str(params.get("mode", "full")))
        replaced_by = later.task_id if later else None
    return Review(
        task=task,
        runs=client.runs(task_id),
        caltable=caltable,
        checks=checks_of(caltable) if caltable else [],
        plots=[k for k in PLOT_TITLES if caltable and k in caltable.plots],
        replaced_by=replaced_by,
    )


def submit_apply(conn: psycopg.Connection, who: Principal, caltable_id: int, body: ApplyRequest) -> Queued:
    """Queue ``apply-calibration`` of this caltable to an MS; audited. An MS the caltable cannot
    calibrate is refused here, with the reason the task would give."""
    caltable = _caltable(conn, caltable_id)
    ms = body.ms_path or FilePath(caltable.ms_path)
    target = products.find_ms(conn, ms)
    if target is None:
        raise ValueError(f"ms_path {ms} is not in products.ms_index; convert it first")
    why = why_not_applicable(caltable, target.mid_mjd)
    if why is not None:
        raise ValueError(f"caltable {caltable_id} cannot calibrate {ms}: {why}")
    params = ApplyParams(ms_path=ms, caltable_id=caltable.id)
    task_id = Client(conn=conn, registry=registry).spawn(APPLY, params.model_dump(mode="json")).task_id
    audit_action(conn, who, "calibration.apply", str(ms), task_id=task_id, caltable_id=caltable.id)
    return Queued(task_id=task_id)


def plot_file(conn: psycopg.Connection, caltable_id: int, kind: PlotKind) -> FilePath:
    """The PNG the solve drew for ``kind``; LookupError when it was not drawn or is gone from disk."""
    caltable = _caltable(conn, caltable_id)
    recorded = caltable.plots.get(kind)
    if recorded is None:
        raise LookupError(f"caltable {caltable_id} has no {kind} plot")
    path = FilePath(recorded)
    if not path.is_file():
        raise LookupError(f"the {kind} plot of caltable {caltable_id} is no longer on disk")
    return path


# The JSON API -------------------------------------------------------------------------------------


@router.post(f"{API}/calibration/solve", response_model=Queued, tags=["calibration"])
def api_solve(who: Operator, conn: Conn, body: Annotated[SolveRequest, Body()]) -> Queued:
    """Queue a solve (bandpass, or bandpass + gains) on a calibrator transit."""
    return submit_solve(conn, who, body)


@router.get(API + "/calibration/solves/{task_id}", response_model=Review, tags=["calibration"])
def api_review(who: User, conn: Conn, task_id: Id) -> Review:
    """A solve's state and attempts, and once done its caltable and QA checks."""
    return review(conn, task_id)


@router.post(API + "/calibration/caltables/{caltable_id}/apply", response_model=Queued, tags=["calibration"])
def api_apply(who: Operator, conn: Conn, caltable_id: Id, body: Annotated[ApplyRequest, Body()]) -> Queued:
    """Queue the application of this solve to an MS (default: the MS it was solved on)."""
    return submit_apply(conn, who, caltable_id, body)


@router.get(
    API + "/calibration/caltables/{caltable_id}/plots/{kind}.png",
    response_class=FileResponse,
    responses=PNG,
    tags=["calibration"],
)
def api_plot(who: User, conn: Conn, caltable_id: Id, kind: PlotKind) -> FileResponse:
    """One of the solve's diagnostic plots as PNG."""
    return FileResponse(
        plot_file(conn, caltable_id, kind),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=60"},
    )


# The pages ----------------------------------------------------------------------------------------


def with_calibrators(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each MS with the catalogue calibrator its beam held at mid-time (the one a solve would model), or
    None: target fields are listed too, and a solve on one fails."""
    catalogue = load_catalogue()
    for row in rows:
        found = calibrators_in_beam(row["ra_deg"], row["dec_deg"], BAND_CENTRE_HZ, catalogue)
        row["calibrator"] = found[0].calibrator.name if found else None
    return rows


@router.get("/calibration", response_class=HTMLResponse, include_in_schema=False)
def configure_page(request: Request, who: User, conn: Conn) -> Response:
    """Step 1: pick the MS (calibrator transits first selected), the mode and the reference antenna;
    recent solves below."""
    recent, _ = operations.task_page(conn, None, None, SOLVE, None, 20)
    choices = with_calibrators(store.ms_choices(conn))
    first = next((row["path"] for row in choices if row["calibrator"]), None)
    return page(request, "calibration.html", who, choices=choices, recent=recent, selected=first)


@router.post("/calibration/solve", include_in_schema=False)
def solve_form(
    who: Operator,
    conn: Conn,
    ms_path: Annotated[str, Form(max_length=1000)],
    mode: Annotated[Literal["bandpass", "full"], Form()] = "full",
    refant: Annotated[str, Form(max_length=32)] = "",
    caltable_dir: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Queue the solve and go to its Run step."""
    body = SolveRequest(
        ms_path=FilePath(ms_path),
        mode=mode,
        refant=refant.strip() or None,
        caltable_dir=FilePath(caltable_dir) if caltable_dir.strip() else None,
    )
    queued = submit_solve(conn, who, body)
    return RedirectResponse(f"/calibration/runs/{queued.task_id}", status_code=303)


def _progress(conn: psycopg.Connection, who: Principal, task_id: int, apply_id: int | None) -> dict[str, Any]:
    data = review(conn, task_id)
    applied = None
    targets: list[dict[str, Any]] = []
    if apply_id is not None:
        client = Client(conn=conn)
        applied = {"task": _task_named(client, apply_id, APPLY), "runs": client.runs(apply_id)}
    if data.caltable is not None:
        targets = store.ms_covered(conn, data.caltable)
    return {"r": data, "applied": applied, "targets": targets, "titles": PLOT_TITLES, "user": who}


def _progress_html(request: Request, who: Principal, task_id: int, apply_id: int | None) -> str:
    with request.app.state.pool.connection() as conn:
        context = _progress(conn, who, task_id, apply_id)
    return templates.get_template("_calibration_run.html").render(**context)


ApplyId = Annotated[int | None, Query(ge=1, le=2**62)]


@router.get("/calibration/runs/{task_id}", response_class=HTMLResponse, include_in_schema=False)
def run_page(request: Request, who: User, conn: Conn, task_id: Id, apply: ApplyId = None) -> Response:
    """Steps 2–4 for one solve: its progress (live), then the review and the Apply form."""
    context = _progress(conn, who, task_id, apply)
    query = f"?apply={apply}" if apply else ""
    return page(request, "calibration_run.html", who, task_id=task_id, query=query, **context)


@router.get("/events/calibration/{task_id}", include_in_schema=False)
async def run_events(request: Request, who: User, task_id: Id, apply: ApplyId = None) -> StreamingResponse:
    """The Run/Review fragment, pushed whenever the solve (or its apply) changes."""
    # Rendered once up front so that an unknown task is a 404, not a broken stream.
    await run_in_threadpool(_progress_html, request, who, task_id, apply)
    return live_stream(
        request, "calibration", lambda: _progress_html(request, who, task_id, apply), poll_s=RUN_POLL_S
    )


@router.post("/calibration/caltables/{caltable_id}/apply", include_in_schema=False)
def apply_form(
    who: Operator, conn: Conn, caltable_id: Id, ms_path: Annotated[str, Form(max_length=1000)] = ""
) -> Response:
    """Queue the apply and follow it on the solve's page."""
    caltable = _caltable(conn, caltable_id)
    body = ApplyRequest(ms_path=FilePath(ms_path) if ms_path.strip() else None)
    queued = submit_apply(conn, who, caltable_id, body)
    back = caltable.task_id
    if back is None:
        return RedirectResponse(f"/tasks/{queued.task_id}", status_code=303)
    return RedirectResponse(f"/calibration/runs/{back}?apply={queued.task_id}", status_code=303)
