"""Params and results of the science tasks: what a spawner sends, and what a completion hook reads back.

Each result carries the task id so that the hook, which sees only (params, result), can stamp the
product rows with the task that made them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from science.applycal import MAX_AGE_HOURS, ApplyResult
from science.calibrate import VALIDITY_HOURS, CalibrationResult, QAThresholds, RefantPolicy
from science.catalogs import MonitoringSource
from science.convert import ConversionRecord, IncompletePolicy
from science.imaging import ImageResult, ImagingParams
from science.mosaic import MosaicMethod, MosaicPlan, MosaicResult
from science.photometry import PhotometryOptions, PhotometryResult


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConvertParams(_Params):
    """``convert-uvh5``: one subband group, named by its files or by a directory and a time."""

    input_files: list[Path] | None = Field(default=None, description="the group's subband files")
    input_dir: Path | None = Field(default=None, description="directory to search for the group")
    group_time: datetime | None = Field(default=None, description="time of the group in input_dir (UTC)")
    output_dir: Path
    policy: IncompletePolicy = IncompletePolicy.WAIT
    overwrite: bool = Field(default=True, description="replace an existing MS of the same group")
    version: int = Field(
        default=1,
        ge=1,
        description="MS version: 2 and up are reconversions (<group>.vN.ms) with late subbands",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ConvertParams:
        by_files = bool(self.input_files)
        by_dir = self.input_dir is not None and self.group_time is not None
        if by_files == by_dir:
            raise ValueError("give either input_files, or input_dir together with group_time")
        return self


class ConvertResult(BaseModel):
    """What ``convert-uvh5`` wrote."""

    task_id: int
    record: ConversionRecord


class SolveParams(_Params):
    """``solve-calibration``: solve on the calibrator transit in one MS."""

    ms_path: Path
    caltable_dir: Path
    mode: Literal["bandpass", "full"] = "full"
    refant: str | None = None
    refant_policy: RefantPolicy = RefantPolicy.EXCLUDE_OUTRIGGERS
    gain_solint: str = "inf"
    validity_hours: float = Field(default=VALIDITY_HOURS, gt=0)
    calibrator_list: Path | None = Field(
        default=None, description="the VLA calibrator list to search; default: the bundled catalogue"
    )
    thresholds: QAThresholds = Field(default_factory=QAThresholds)
    log_dir: Path | None = None
    only_if_calibrator: bool = Field(
        default=False,
        description="an MS with no calibrator in its beam completes with nothing solved instead of failing "
        "(for workflows that run on every new MS)",
    )


class SolveResult(BaseModel):
    """What ``solve-calibration`` wrote; ``calibration`` is None when there was no calibrator to solve on."""

    task_id: int
    calibration: CalibrationResult | None
    skipped: str | None = None


class ApplyParams(_Params):
    """``apply-calibration``: apply the valid solve to a target MS, waiting for one if none exists yet."""

    ms_path: Path
    max_age_hours: float = Field(
        default=MAX_AGE_HOURS, gt=0, description="oldest solve, before the target, to use"
    )
    wait_timeout_s: float = Field(
        default=86_400.0, ge=0, description="give up waiting for a solve after this"
    )
    log_dir: Path | None = None
    caltable_id: int | None = Field(
        default=None,
        ge=1,
        description="apply this stored solve (chosen by hand, as the calibration wizard does) instead of "
        "the latest valid one; it must have passed QA and its validity window must contain the MS",
    )


class ApplyOutcome(BaseModel):
    """What ``apply-calibration`` did."""

    task_id: int
    caltable_id: int
    applied: ApplyResult


class ImageParams(_Params):
    """``create-image``: image one calibrated MS."""

    ms_path: Path
    output_dir: Path
    name: str | None = Field(default=None, description="file stem; default: the MS name")
    imaging: ImagingParams = Field(default_factory=ImagingParams)
    log_dir: Path | None = None


class ImageOutcome(BaseModel):
    """What ``create-image`` wrote."""

    task_id: int
    image: ImageResult


class MosaicParams(_Params):
    """``create-mosaic``: a plan given in full, a stored plan by name, or the images in a time range."""

    plan: MosaicPlan | None = None
    plan_name: str | None = Field(default=None, description="a plan stored by `contimg mosaic plan`")
    name: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    output_dir: Path | None = None
    method: MosaicMethod = MosaicMethod.WEIGHTED
    preview: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> MosaicParams:
        by_range = all(v is not None for v in (self.name, self.start, self.end, self.output_dir))
        given = [self.plan is not None, self.plan_name is not None, by_range]
        if sum(given) != 1:
            raise ValueError("give exactly one of: plan, plan_name, or name+start+end+output_dir")
        return self


class MosaicOutcome(BaseModel):
    """What ``create-mosaic`` wrote."""

    task_id: int
    mosaic: MosaicResult


class PhotometryParams(_Params):
    """``run-photometry``: forced photometry of a catalogue on one image or mosaic."""

    image_path: Path
    catalogue_path: Path
    options: PhotometryOptions = Field(default_factory=PhotometryOptions)


class PhotometryOutcome(BaseModel):
    """What ``run-photometry`` measured, and the catalogue rows it measured at."""

    task_id: int
    catalogue_path: Path
    sources: list[MonitoringSource]
    measurements: list[PhotometryResult]
