"""The worker runtime: claims tasks, runs them, keeps their leases and records their outcomes."""

from absurd.worker.pool import Worker, WorkerSettings

__all__ = ["Worker", "WorkerSettings"]
