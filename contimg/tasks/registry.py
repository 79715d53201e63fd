"""The science tasks on the queue: convert, calibrate, apply, image, mosaic, photometry.

Each task runs a ``science`` function in a worker child process (CASA and WSClean are neither
thread-safe nor light) and returns what it wrote; its completion hook records that in the products
database inside the transaction that completes the task, so a product row exists exactly when its
task completed. Bad input (``InvalidInputError``) fails a task at once, without retries: it is then
a dead letter, with the error that names the file.

Events: recording the n-th solve emits ``caltable-ready:<n>`` (``products.caltable_ready_event``).
An apply task that finds no valid solve waits for the next one; events are kept once emitted, so a
solve recorded between its look-up and its wait wakes it at once.

Run a worker with ``contimg worker`` or
``python -m absurd worker --registry contimg.tasks.registry:registry --queue convert --queue calibrate ...``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

import absurd
from absurd.builtin_tasks import builtin
from absurd.errors import EventTimeoutError
from contimg.storage.nospace import room_to_write
from contimg.store import products
from contimg.tasks import queues
from contimg.tasks.lightcurves import registry as lightcurve_registry
from contimg.tasks.notify import registry as notify_registry
from contimg.tasks.params import (
    ApplyOutcome,
    ApplyParams,
    ConvertParams,
    ConvertResult,
    ImageOutcome,
    ImageParams,
    MosaicOutcome,
    MosaicParams,
    PhotometryOutcome,
    PhotometryParams,
    SolveParams,
    SolveResult,
)
from contimg.tasks.reprocess import registry as reprocess_registry
from contimg.tasks.sky import registry as sky_registry
from contimg.tasks.storage import registry as storage_registry
from science import casa_env
from science.applycal import apply_calibration, select_caltable, why_not_applicable
from science.calibrate import NoCalibratorInBeamError, solve_calibration
from science.calibrators import read_vla_list
from science.catalogs import read_catalog
from science.constants import GROUP_TOLERANCE_S
from science.convert import convert_group
from science.errors import InvalidInputError
from science.grouping import SubbandGroup, find_groups, group_files, parse_subband_path
from science.imaging import create_image, planned_imsize
from science.mosaic import MosaicPlan, build_plan
from science.photometry import measure_file

PERMANENT = (InvalidInputError,)

science = absurd.Registry()


class NoValidCaltableError(absurd.PermanentError):
    """No solve valid for the target was recorded within the wait."""


def _log_dir(value: Path | None) -> Path:
    return Path(value) if value is not None else casa_env.default_log_dir()


# convert-uvh5 ----------------------------------------------------------------------------------


def resolve_group(params: ConvertParams) -> SubbandGroup:
    """The subband group the params name; InvalidInputError if they name none, or several."""
    if params.input_files:
        parsed = []
        for path in params.input_files:
            found = parse_subband_path(Path(path))
            if found is None:
                raise InvalidInputError(
                    f"{path}: not a subband file name (expected YYYY-MM-DDTHH:MM:SS_sbNN.hdf5)"
                )
            parsed.append(found)
        groups = group_files(parsed)
        if len(groups) != 1:
            names = ", ".join(g.group_id for g in groups)
            raise InvalidInputError(f"input_files hold {len(groups)} observation groups ({names}); give one")
        return groups[0]
    assert params.input_dir is not None and params.group_time is not None
    when = params.group_time if params.group_time.tzinfo else params.group_time.replace(tzinfo=UTC)
    margin = timedelta(seconds=GROUP_TOLERANCE_S)
    groups = find_groups(params.input_dir, when - margin, when + margin)
    if not groups:
        raise InvalidInputError(
            f"{params.input_dir}: no subband files named within {margin} of {when:%Y-%m-%dT%H:%M:%S}"
        )
    return min(groups, key=lambda g: abs((g.timestamp - when).total_seconds()))


def _record_conversion(conn: psycopg.Connection, params: ConvertParams, result: Any) -> None:
    done = ConvertResult.model_validate(result)
    products.record_ms(conn, done.record, done.task_id)


@science.task(
    "convert-uvh5",
    params=ConvertParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.CONVERT, timeout_s=1800, max_attempts=3),
    permanent_errors=PERMANENT,
    on_complete=_record_conversion,
)
def convert_uvh5(ctx: absurd.TaskContext, params: ConvertParams) -> ConvertResult:
    """Convert one subband group into a meridian-phased MS."""
    group = resolve_group(params)
    output_dir = Path(params.output_dir).resolve()
    # An MS takes up to about twice its subband files (the 3.5 GB benchmark MS came from 2.2 GB).
    needed = 2 * sum(path.stat().st_size for path in group.files.values() if path.exists())
    with room_to_write(ctx, output_dir, needed):
        # A retry after a completed conversion (say the hook failed) records the MS without rewriting it.
        record = ctx.step(
            "convert",
            convert_group,
            group,
            output_dir,
            params.policy,
            params.overwrite,
            version=params.version,
        )
    return ConvertResult(task_id=ctx.task_id, record=record)


# solve-calibration ---------------------------------------------------------------------------


def _record_solve(conn: psycopg.Connection, params: SolveParams, result: Any) -> None:
    done = SolveResult.model_validate(result)
    if done.calibration is None:
        return
    caltable_id, generation = products.record_caltables(conn, done.calibration, done.task_id)
    # Emitted in this transaction: waiting apply tasks wake only once the caltable row is visible.
    absurd.emit_event(
        conn,
        products.caltable_ready_event(generation),
        {
            "caltable_id": caltable_id,
            "ms_path": str(done.calibration.ms_path),
            "mid_mjd": done.calibration.mid_mjd,
        },
    )


@science.task(
    "solve-calibration",
    params=SolveParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.CALIBRATE, timeout_s=3600, max_attempts=3),
    permanent_errors=PERMANENT,
    on_complete=_record_solve,
)
def solve(ctx: absurd.TaskContext, params: SolveParams) -> SolveResult:
    """Solve bandpass (and gains, in mode full) on the calibrator transit of an MS."""
    try:
        with room_to_write(ctx, Path(params.caltable_dir)):
            result = solve_calibration(
                params.ms_path,
                params.caltable_dir,
                log_dir=_log_dir(params.log_dir),
                mode=params.mode,
                refant=params.refant,
                refant_policy=params.refant_policy,
                gain_solint=params.gain_solint,
                validity_hours=params.validity_hours,
                thresholds=params.thresholds,
                catalogue=read_vla_list(params.calibrator_list) if params.calibrator_list else None,
            )
    except NoCalibratorInBeamError as exc:
        if not params.only_if_calibrator:
            raise
        ctx.log.info("no calibrator in the beam; nothing to solve", ms=str(params.ms_path))
        return SolveResult(task_id=ctx.task_id, calibration=None, skipped=str(exc))
    return SolveResult(task_id=ctx.task_id, calibration=result)


# apply-calibration ---------------------------------------------------------------------------


def _record_apply(conn: psycopg.Connection, params: ApplyParams, result: Any) -> None:
    done = ApplyOutcome.model_validate(result)
    products.mark_calibrated(
        conn, done.applied.ms_path, done.caltable_id, done.applied.flagged_fraction_after
    )


def wait_for_caltable(ctx: absurd.TaskContext, ms_path: Path, params: ApplyParams) -> products.StoredCaltable:
    """The solve to apply to ``ms_path``; suspends the task until one is recorded (up to the timeout)."""
    with ctx.connection() as conn:
        target = products.find_ms(conn, ms_path)
    if target is None:
        raise InvalidInputError(f"{ms_path} is not in products.ms_index; convert it with convert-uvh5 first")
    # The wait is counted from the first attempt, so that re-runs after each wake do not extend it.
    started = datetime.fromisoformat(ctx.step("wait-started", lambda: datetime.now(UTC).isoformat()))
    while True:
        with ctx.connection() as conn:
            # Generation first: a solve recorded after this read emits the event awaited below.
            generation = products.calibration_generation(conn)
            candidates = products.caltable_candidates(conn, target.mid_mjd, params.max_age_hours)
        chosen = select_caltable(candidates, target.mid_mjd, params.max_age_hours)
        if chosen is not None:
            return chosen
        event = products.caltable_ready_event(generation + 1)
        remaining = params.wait_timeout_s - (datetime.now(UTC) - started).total_seconds()
        ctx.log.info(
            "no valid caltable yet; waiting", ms=str(ms_path), wait_event=event, remaining_s=round(remaining)
        )
        try:
            ctx.await_event(event, max(remaining, 0.0))
        except EventTimeoutError:
            raise NoValidCaltableError(
                f"no passing solve within {params.max_age_hours} h before {ms_path} "
                f"(MJD {target.mid_mjd:.5f}) "
                f"was recorded in {params.wait_timeout_s:.0f} s; run solve-calibration on an earlier "
                "calibrator transit, or widen max_age_hours"
            ) from None


def chosen_caltable(ctx: absurd.TaskContext, ms_path: Path, caltable_id: int) -> products.StoredCaltable:
    """The solve picked by hand for ``ms_path``; InvalidInputError when it cannot calibrate it."""
    with ctx.connection() as conn:
        target = products.find_ms(conn, ms_path)
        chosen = products.stored_caltable(conn, caltable_id)
    if target is None:
        raise InvalidInputError(f"{ms_path} is not in products.ms_index; convert it with convert-uvh5 first")
    if chosen is None:
        raise InvalidInputError(f"caltable {caltable_id} is not in products.caltables")
    why = why_not_applicable(chosen, target.mid_mjd)
    if why is not None:
        raise InvalidInputError(f"caltable {caltable_id} cannot calibrate {ms_path}: {why}")
    return chosen


@science.task(
    "apply-calibration",
    params=ApplyParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.CALIBRATE, timeout_s=1800, max_attempts=3),
    permanent_errors=PERMANENT,
    on_complete=_record_apply,
)
def apply(ctx: absurd.TaskContext, params: ApplyParams) -> ApplyOutcome:
    """Apply the nearest earlier valid solve to a target MS, waiting for one if there is none yet."""
    ms_path = Path(params.ms_path).resolve()
    if params.caltable_id is not None:
        chosen = chosen_caltable(ctx, ms_path, params.caltable_id)
    else:
        chosen = wait_for_caltable(ctx, ms_path, params)
    with room_to_write(ctx, ms_path):
        applied = apply_calibration(
            ms_path, [Path(t) for t in chosen.apply_tables], log_dir=_log_dir(params.log_dir)
        )
    return ApplyOutcome(task_id=ctx.task_id, caltable_id=chosen.id, applied=applied)


# create-image --------------------------------------------------------------------------------


def _record_image(conn: psycopg.Connection, params: ImageParams, result: Any) -> None:
    done = ImageOutcome.model_validate(result)
    products.record_image(conn, done.image, done.task_id)


@science.task(
    "create-image",
    params=ImageParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.IMAGING, timeout_s=3600, max_attempts=3),
    permanent_errors=PERMANENT,
    on_complete=_record_image,
)
def image(ctx: absurd.TaskContext, params: ImageParams) -> ImageOutcome:
    """Image an MS (WSClean when installed), with PB images and a PNG preview."""
    # Image, residual, PSF, PB and model planes, 4-byte pixels, with room to spare.
    needed = 8 * 4 * planned_imsize(params.imaging) ** 2
    with room_to_write(ctx, Path(params.output_dir), needed):
        result = create_image(
            params.ms_path,
            params.output_dir,
            log_dir=_log_dir(params.log_dir),
            name=params.name,
            params=params.imaging,
        )
    return ImageOutcome(task_id=ctx.task_id, image=result)


# create-mosaic -------------------------------------------------------------------------------


def resolve_plan(ctx: absurd.TaskContext, params: MosaicParams) -> MosaicPlan:
    """The plan the params describe (given, stored or by time range)."""
    if params.plan is not None:
        return params.plan
    with ctx.connection() as conn:
        if params.plan_name is not None:
            stored = products.load_mosaic_plan(conn, params.plan_name)
            if stored is None:
                raise InvalidInputError(
                    f"no mosaic plan named {params.plan_name!r}; make one with `contimg mosaic plan`"
                )
            return stored
        assert params.name and params.start and params.end and params.output_dir
        plan, _ = products.plan_mosaic(
            conn, params.name, params.start, params.end, params.output_dir, params.method
        )
        return plan


def _record_mosaic(conn: psycopg.Connection, params: MosaicParams, result: Any) -> None:
    done = MosaicOutcome.model_validate(result)
    products.record_mosaic(conn, done.mosaic, done.task_id)


@science.task(
    "create-mosaic",
    params=MosaicParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.IMAGING, timeout_s=3600, max_attempts=3),
    permanent_errors=PERMANENT,
    on_complete=_record_mosaic,
)
def mosaic(ctx: absurd.TaskContext, params: MosaicParams) -> MosaicOutcome:
    """Build a mosaic from a plan, or from the images recorded in a time range."""
    plan = MosaicPlan.model_validate(ctx.step("plan", resolve_plan, ctx, params))
    with room_to_write(ctx, plan.output_path.parent):
        built = build_plan(plan, preview=params.preview)
    return MosaicOutcome(task_id=ctx.task_id, mosaic=built)


# run-photometry ------------------------------------------------------------------------------


def _record_photometry(conn: psycopg.Connection, params: PhotometryParams, result: Any) -> None:
    done = PhotometryOutcome.model_validate(result)
    products.upsert_sources(conn, done.sources, done.catalogue_path)
    products.record_photometry(conn, done.measurements, done.task_id)


@science.task(
    "run-photometry",
    params=PhotometryParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.PHOTOMETRY, timeout_s=1800, max_attempts=3),
    permanent_errors=PERMANENT,
    on_complete=_record_photometry,
)
def photometry(ctx: absurd.TaskContext, params: PhotometryParams) -> PhotometryOutcome:
    """Forced photometry of a catalogue CSV on an image or mosaic."""
    image_path = Path(params.image_path).resolve()
    catalogue_path = Path(params.catalogue_path).resolve()
    sources = read_catalog(catalogue_path)
    options = params.options
    if options.pb_image is None:
        # A recorded image has its primary beam next to it: use it to flag low-response positions.
        with ctx.connection() as conn:
            pb = products.image_pb_path(conn, image_path)
        if pb is not None:
            options = options.model_copy(update={"pb_image": pb})
    measurements = measure_file(image_path, sources, options)
    return PhotometryOutcome(
        task_id=ctx.task_id, catalogue_path=catalogue_path, sources=sources, measurements=measurements
    )


# The worker registry: diagnostics, the science tasks, the light-curve update, the sky tasks, the
# alert notifier, the retention pruner (contimg/storage/) and archival reprocessing's wait for a night's
# observations before its mosaic.
registry = (
    builtin.merge(science)
    .merge(lightcurve_registry)
    .merge(sky_registry)
    .merge(notify_registry)
    .merge(storage_registry)
    .merge(reprocess_registry)
)
