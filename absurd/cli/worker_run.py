"""The body of ``absurd worker``: a worker built from the command's options, run until it is stopped.

Both ways in call it: the typer command (admin.worker, which declares the options and their help) and
``python -m absurd worker`` (worker_start.py), which reads the command line without typer.
"""

from __future__ import annotations

from absurd.logging import configure_logging
from absurd.registry import BUILTIN_REGISTRY, load_registry

METRICS_PORT_ENV = "ABSURD_METRICS_PORT"


def run_worker(
    dsn: str | None = None,
    queue: list[str] | None = None,
    concurrency: int = 8,
    processes: int | None = None,
    registry: list[str] | None = None,
    lease_s: float = 30.0,
    claim_batch: int = 256,
    poll_s: float = 1.0,
    shutdown_grace_s: float = 30.0,
    log_level: str = "INFO",
    metrics_port: int | None = None,
    workers: int = 1,
) -> None:
    """Build a worker from the options of ``absurd worker`` and run it until it is stopped; with
    ``workers`` above 1, that many, forked from this process once it has loaded the registry."""
    from absurd.worker import Worker, WorkerSettings

    configure_logging(log_level)
    settings = WorkerSettings(
        queues=queue or ["default"],
        concurrency=concurrency,
        processes=processes,
        lease_s=lease_s,
        claim_batch=claim_batch,
        poll_s=poll_s,
        shutdown_grace_s=shutdown_grace_s,
        log_level=log_level,
        metrics_port=metrics_port,
    )
    tasks = load_registry(registry or [BUILTIN_REGISTRY])
    if workers == 1:
        Worker(tasks, settings, dsn).run()
        return
    from absurd.database import resolve_dsn
    from absurd.worker.prefork import Prefork

    # Resolved once, here: an embedded server is started by the parent, not by each worker.
    resolved = resolve_dsn(dsn)

    def serve(slot: int) -> None:
        # Each worker serves its own metrics, on the port after the previous worker's.
        port = None if metrics_port is None else metrics_port + slot
        Worker(tasks, settings.model_copy(update={"metrics_port": port}), resolved).run()

    code = Prefork(workers, serve).run()
    if code:
        raise SystemExit(code)
