"""The task of the multi-host tests: it works for a while, then its completion hook writes a product row,
in the transaction that completes it, so a refused late completion leaves no row behind."""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg

from absurd.context import TaskContext
from absurd.registry import Registry

registry = Registry()

PRODUCTS_DDL = """
CREATE TABLE IF NOT EXISTS partition_products (
    task_id bigint NOT NULL, run_id bigint NOT NULL, pid integer NOT NULL, at timestamptz DEFAULT now())
"""


def record_product(conn: psycopg.Connection, params: Any, result: Any) -> None:
    """The product row, written only if the completion is accepted."""
    conn.execute(
        "INSERT INTO partition_products (task_id, run_id, pid) VALUES (%s, %s, %s)",
        (result["task_id"], result["run_id"], result["pid"]),
    )


@registry.task("work-then-record", on_complete=record_product)
def work_then_record(ctx: TaskContext, params: Any) -> dict[str, int]:
    """Work for ``params.seconds`` (the worker renews the lease meanwhile), then report who did it."""
    time.sleep(float(params["seconds"]))
    return {"task_id": ctx.task_id, "run_id": ctx.run_id, "pid": os.getpid()}
