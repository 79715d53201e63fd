"""The pipeline's own gauges on the streaming converter's metrics endpoint, read from the products
database per scrape: when the newest subband file and Measurement Set arrived, and whether the newest
MS has a valid calibration near its declination. The alert rules in ``deploy/prometheus/`` use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from contimg.store.observing import observing_state

log = structlog.get_logger("contimg.metrics")


class ObservingCollector(Collector):
    """Freshness of the newest products and validity of the calibration, per scrape."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def collect(self) -> Iterator[Any]:
        """Yield the gauges; ``contimg_products_database_up`` is 0 when the database could not be read."""
        up = GaugeMetricFamily("contimg_products_database_up", "1 when the last scrape could read products")
        newest_file = GaugeMetricFamily(
            "contimg_stream_last_file_timestamp_seconds",
            "when the newest subband file was registered (Unix time); absent before the first",
        )
        newest_ms = GaugeMetricFamily(
            "contimg_ms_last_recorded_timestamp_seconds",
            "when the newest Measurement Set was recorded (Unix time); absent before the first",
        )
        valid = GaugeMetricFamily(
            "contimg_calibration_valid",
            "1 when a solve that passed QA is valid for the newest Measurement Set, 0 when none is",
        )
        offset = GaugeMetricFamily(
            "contimg_calibration_dec_offset_deg",
            "declination between the newest Measurement Set and the solve chosen for it",
        )
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                state = observing_state(conn)
            up.add_metric([], 1.0)
            if state.newest_file_at is not None:
                newest_file.add_metric([], state.newest_file_at.timestamp())
            if state.newest_ms_at is not None:
                newest_ms.add_metric([], state.newest_ms_at.timestamp())
            if state.calibration_valid is not None:
                valid.add_metric([], 1.0 if state.calibration_valid else 0.0)
            if state.dec_offset_deg is not None:
                offset.add_metric([], state.dec_offset_deg)
        except psycopg.Error as exc:
            log.warning("metrics: cannot read the products database", error=str(exc))
            up.add_metric([], 0.0)
        yield from (up, newest_file, newest_ms, valid, offset)
