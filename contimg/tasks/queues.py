"""The science queues: one per kind of work, so each gets its own worker slots and concurrency limits.

Every task names its queue from here; workflows and schedules inherit it from the task. A worker for
the whole pipeline serves ``ALL``.
"""

from __future__ import annotations

CONVERT = "convert"
CALIBRATE = "calibrate"
IMAGING = "imaging"
PHOTOMETRY = "photometry"
# Science alerts on their way out (notify-alert): light, and never behind a long imaging run.
ALERTS = "alerts"

ALL = (CONVERT, CALIBRATE, IMAGING, PHOTOMETRY, ALERTS)
