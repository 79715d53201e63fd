"""Offline CASA set-up: call :func:`configure` before the first casatools import.

casatools tries to update its measures data on import and fails without a network; casadata ships
the data, and casaconfig is told to use it and never to update. CASA's log goes to an absolute
path so that it never lands in the current directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_configured_log: Path | None = None


def default_log_dir() -> Path:
    """Where CASA logs go when a caller names no directory."""
    return Path(os.environ.get("CONTIMG_CASA_LOG_DIR", Path(tempfile.gettempdir()) / "contimg-casa-logs"))


def configure(log_dir: Path | None = None) -> Path:
    """Configure casaconfig for offline use and return the CASA log file path.

    Safe to call more than once; later calls move the log to their directory.
    """
    global _configured_log
    log_dir = Path(log_dir or default_log_dir()).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    logfile = log_dir / "casa.log"
    if _configured_log is None:
        import casadata
        from casaconfig import config

        config.measurespath = casadata.datapath
        config.datapath = [casadata.datapath]
        config.measures_auto_update = False
        config.data_auto_update = False
        config.logfile = str(logfile)
        config.nologger = True
        config.log2term = False
        _configured_log = logfile
    elif logfile != _configured_log:
        # The tasks log through casatasks' own sink: a new casatools.logsink() moved nothing, and a
        # failed solve named a log file that stayed empty.
        from casatasks import casalog

        casalog.setlogfile(str(logfile))
        _configured_log = logfile
    return logfile
