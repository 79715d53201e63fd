"""Submitting work from the dashboard: conversion of a time range and imaging of one Measurement Set,
each as tasks on the queue (operators only, audited). The params are the tasks' own models, so a
submission is checked exactly as a worker would check it, before anything is queued."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated

import psycopg
from fastapi import APIRouter, Body, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from absurd.client import Client
from contimg.tasks.params import ConvertParams, ImageParams
from contimg.tasks.registry import registry
from contimg.web.auth import Operator, Principal, User, audit_action
from contimg.web.db import Conn
from contimg.web.errors import ERRORS
from contimg.web.templating import page
from science.convert import IncompletePolicy
from science.grouping import find_groups
from science.imaging import ImagingParams

router = APIRouter(responses=ERRORS)
API = "/api/v1"


class ConvertRange(BaseModel):
    """Convert every subband group in a directory whose files fall in [start, end] (UTC)."""

    input_dir: FilePath
    output_dir: FilePath
    start_time: datetime
    end_time: datetime
    policy: IncompletePolicy = Field(
        default=IncompletePolicy.WAIT, description="what to do with incomplete groups"
    )


class ImageRequest(BaseModel):
    """Image one calibrated Measurement Set."""

    ms_path: FilePath
    output_dir: FilePath
    imaging: ImagingParams = Field(default_factory=ImagingParams)


class Submitted(BaseModel):
    """The tasks queued."""

    task_ids: list[int]
    groups: list[str] = Field(default_factory=list, description="convert: the group of each task")


def submit_conversion(conn: psycopg.Connection, who: Principal, body: ConvertRange) -> Submitted:
    """One convert-uvh5 task per group in the range; ValueError when the range holds none."""
    if body.end_time < body.start_time:
        raise ValueError(f"end_time {body.end_time} is before start_time {body.start_time}")
    if not body.input_dir.is_dir():
        raise ValueError(f"input_dir {body.input_dir} is not a directory")
    groups = find_groups(body.input_dir, body.start_time, body.end_time)
    if not groups:
        raise ValueError(
            f"no subband group in {body.input_dir} between {body.start_time} and {body.end_time}"
        )
    client = Client(conn=conn, registry=registry)
    ids = []
    for group in groups:
        params = ConvertParams(
            input_files=[group.files[i] for i in sorted(group.files)],
            output_dir=body.output_dir,
            policy=body.policy,
        )
        ids.append(client.spawn("convert-uvh5", params.model_dump(mode="json")).task_id)
    names = [g.group_id for g in groups]
    audit_action(conn, who, "submit.convert", str(body.input_dir), task_ids=ids, groups=names)
    return Submitted(task_ids=ids, groups=names)


def submit_image(conn: psycopg.Connection, who: Principal, body: ImageRequest) -> Submitted:
    """One create-image task; ValueError when the MS is not there."""
    if not body.ms_path.is_dir():
        raise ValueError(f"ms_path {body.ms_path} is not a Measurement Set (no such directory)")
    params = ImageParams(ms_path=body.ms_path, output_dir=body.output_dir, imaging=body.imaging)
    task_id = (
        Client(conn=conn, registry=registry).spawn("create-image", params.model_dump(mode="json")).task_id
    )
    audit_action(conn, who, "submit.image", str(body.ms_path), task_id=task_id)
    return Submitted(task_ids=[task_id])


@router.post(f"{API}/submit/convert", response_model=Submitted, tags=["operations"])
def api_convert(who: Operator, conn: Conn, body: Annotated[ConvertRange, Body()]) -> Submitted:
    """Queue the conversion of every subband group in a time range."""
    return submit_conversion(conn, who, body)


@router.post(f"{API}/submit/image", response_model=Submitted, tags=["operations"])
def api_image(who: Operator, conn: Conn, body: Annotated[ImageRequest, Body()]) -> Submitted:
    """Queue the imaging of one Measurement Set with the default imaging parameters (or given ones)."""
    return submit_image(conn, who, body)


@router.get("/submit", response_class=HTMLResponse, include_in_schema=False)
def submit_page(request: Request, who: User) -> Response:
    """The conversion and imaging forms."""
    return page(request, "submit.html", who, done=None)


@router.post("/submit/convert", response_class=HTMLResponse, include_in_schema=False)
def convert_form(
    request: Request,
    who: Operator,
    conn: Conn,
    input_dir: Annotated[str, Form(max_length=1000)],
    output_dir: Annotated[str, Form(max_length=1000)],
    start_time: Annotated[datetime, Form()],
    end_time: Annotated[datetime, Form()],
    policy: Annotated[IncompletePolicy, Form()] = IncompletePolicy.WAIT,
) -> Response:
    """Queue a conversion from the form and show what was queued."""
    body = ConvertRange(
        input_dir=FilePath(input_dir), output_dir=FilePath(output_dir), start_time=start_time,
        end_time=end_time, policy=policy,
    )  # fmt: skip
    return page(request, "submit.html", who, done=submit_conversion(conn, who, body), what="conversion")


@router.post("/submit/image", response_class=HTMLResponse, include_in_schema=False)
def image_form(
    request: Request,
    who: Operator,
    conn: Conn,
    ms_path: Annotated[str, Form(max_length=1000)],
    output_dir: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Queue an imaging task from the form and show it."""
    body = ImageRequest(ms_path=FilePath(ms_path), output_dir=FilePath(output_dir))
    return page(request, "submit.html", who, done=submit_image(conn, who, body), what="imaging")
