"""Prometheus gauges of storage: free space and level per data path, bytes on disk per product kind."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge

LEVEL_VALUE = {"ok": 0, "warning": 1, "critical": 2}


class StorageMetrics:
    """The storage gauges, on the registry of the daemon that serves them (``contimg storage guard``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.free = Gauge(
            "contimg_storage_free_bytes",
            "free bytes on the disk of a data path",
            ["path"],
            registry=self.registry,
        )
        self.total = Gauge(
            "contimg_storage_total_bytes", "size of the disk of a data path", ["path"], registry=self.registry
        )
        self.level = Gauge(
            "contimg_storage_level",
            "0 ok, 1 below the warning level, 2 below the critical level (its writers paused)",
            ["path"],
            registry=self.registry,
        )
        self.kind_bytes = Gauge(
            "contimg_storage_product_bytes",
            "bytes on disk of the recorded products, by kind",
            ["kind"],
            registry=self.registry,
        )

    def observe_path(self, path: str, free: int, total: int, level: str) -> None:
        """Record one probe."""
        self.free.labels(path).set(free)
        self.total.labels(path).set(total)
        self.level.labels(path).set(LEVEL_VALUE[level])

    def observe_kinds(self, bytes_by_kind: Mapping[str, int]) -> None:
        """Record the bytes on disk of each product kind."""
        for kind, n in bytes_by_kind.items():
            self.kind_bytes.labels(kind).set(n)
