"""An alert as a VOEvent 2.0 document (IVOA), built with voevent-parse.

Who: the pipeline's stream and contact. What: the alert (kind, id, source), the measurement behind it
(flux, peak, SNR, rms, image) and, for a catalogued source, its variability metrics; for a new source,
the nearest catalogued one. WhereWhen: the position (ICRS, degrees) at the measurement's time. Why: how
important, and what kind of thing it is. The document depends on the alert alone (its Date is the
alert's time), so building it twice gives the same bytes.
"""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

import voeventparse as vp
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from lxml import etree

from contimg.alerts.config import AlertSinks
from contimg.store.alert_delivery import AlertSubject

# How much a follow-up facility should care, by alert kind (VOEvent Why/@importance, 0 to 1).
IMPORTANCE = {"new_source": 0.8, "transient": 0.8, "rapid_rise": 0.7, "variable": 0.5}
CONCEPT = {
    "new_source": "src.class; transient candidate: no catalogued source at this position",
    "transient": "process.variation; transient candidate",
    "rapid_rise": "process.variation; rapid rise in flux density",
    "variable": "process.variation; variable source",
}
# The schema requires an error circle. Forced photometry measures at a catalogued source's position, so
# the position sent is the catalogue's: about 1 arcsec for the sources bright enough to alert on.
CATALOGUE_POSITION_ERROR_ARCSEC = 1.0
# The variability metrics (science/variability.py) and their UCDs.
VARIABILITY_PARAMS = {
    "eta": ("stat.fit.chi2", "weighted reduced chi-squared of the light curve against its mean (eta)"),
    "v": ("src.var.index", "coefficient of variation of the light curve (V)"),
    "chi2_nu": ("stat.fit.chi2", "reduced chi-squared against a constant"),
    "vs": ("stat.value", "largest two-epoch variability t-statistic (Vs)"),
    "m": ("src.var.amplitude", "modulation index of that epoch pair"),
    "rise_sigma": ("stat.snr", "rise between the last two epochs in sigma"),
    "latest_snr": ("stat.snr", "signal-to-noise ratio at the latest epoch"),
    "first_mjd": ("time.start", "first epoch of the light curve (MJD)"),
    "last_mjd": ("time.end", "last epoch of the light curve (MJD)"),
}


def event_ivorn(sinks: AlertSinks, alert_id: int) -> str:
    """The alert's IVORN: the stream's, with ``#alert-<id>``."""
    return f"{sinks.author.ivorn}#alert-{alert_id}"


def designation(ra_deg: float, dec_deg: float) -> str:
    """An IAU-style name from the position, for sources without one: ``DSA Jhhmmss.ss+ddmmss.s``."""
    coord = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs")
    ra = coord.ra.to_string(unit=u.hourangle, sep="", precision=2, pad=True)
    dec = coord.dec.to_string(sep="", precision=1, alwayssign=True, pad=True)
    return f"DSA J{ra}{dec}"


def build_voevent(subject: AlertSubject, sinks: AlertSinks) -> tuple[str, str]:
    """The alert's (IVORN, VOEvent XML); raises ValueError if the document is not schema-valid."""
    authority_stream = sinks.author.ivorn.removeprefix("ivo://")
    event = vp.Voevent(stream=authority_stream, stream_id=f"alert-{subject.id}", role=sinks.role)
    vp.set_who(
        event, date=subject.created_at.astimezone(UTC).replace(microsecond=0), author_ivorn=authority_stream
    )
    vp.set_author(
        event,
        title=sinks.author.title,
        shortName=sinks.author.short_name,
        contactName=sinks.author.contact_name,
        contactEmail=sinks.author.contact_email,
    )
    event.Who.Description = "DSA-110 continuum imaging pipeline (dsa110-contimg)"
    name = subject.source_name or designation(subject.ra_deg, subject.dec_deg)

    alert = [
        vp.Param("kind", value=subject.kind, ucd="meta.code.class"),
        vp.Param("alert_id", value=subject.id, ucd="meta.id"),
        vp.Param("source", value=name, ucd="meta.id;src"),
    ]
    if subject.detection_id is not None:
        alert.append(vp.Param("detection_id", value=subject.detection_id, ucd="meta.id"))
    event.What.append(vp.Group(alert, name="alert"))
    measured = [
        _param("flux_jy", subject.flux_jy, "Jy", "phot.flux.density", "integrated flux density"),
        _param("flux_err_jy", subject.flux_err_jy, "Jy", "stat.error;phot.flux.density", "its 1-sigma error"),
        _param("peak_jy", subject.peak_jy, "Jy/beam", "phot.flux.density", "peak flux density"),
        _param("snr", subject.snr, None, "stat.snr", "signal-to-noise ratio"),
        _param(
            "local_rms_jy", subject.local_rms_jy, "Jy/beam", "stat.stdev;phot.flux.density", "image noise"
        ),
        _param("mjd", subject.mjd, "d", "time.epoch", "mid-time of the image (MJD)"),
    ]
    if subject.image_path is not None:
        measured.append(vp.Param("image", value=subject.image_path, ucd="meta.file"))
    event.What.append(vp.Group([p for p in measured if p is not None], name="measurement"))
    if subject.kind == "new_source":
        nearest = subject.metrics.get("nearest") or {}
        identification = [
            vp.Param("nearest_catalogue", value=str(nearest["survey"]), ucd="meta.id;meta.dataset")
            if nearest.get("survey")
            else None,
            vp.Param("nearest_source", value=str(nearest["name"]), ucd="meta.id")
            if nearest.get("name")
            else None,
            _param(
                "nearest_separation_arcsec",
                nearest.get("separation_arcsec"),
                "arcsec",
                "pos.angDistance",
                None,
            ),
            _param("nearest_flux_mjy", nearest.get("flux_mjy"), "mJy", "phot.flux.density", None),
        ]
        event.What.append(vp.Group([p for p in identification if p is not None], name="identification"))
    else:
        variability = [
            _param(key, subject.metrics.get(key), "d" if key.endswith("mjd") else None, ucd, text)
            for key, (ucd, text) in VARIABILITY_PARAMS.items()
        ]
        event.What.append(vp.Group([p for p in variability if p is not None], name="variability"))

    when = subject.mjd
    observed = Time(when, format="mjd", scale="utc").to_datetime(timezone=UTC) if when else subject.created_at
    error_arcsec = (
        subject.pos_err_arcsec if subject.pos_err_arcsec is not None else CATALOGUE_POSITION_ERROR_ARCSEC
    )
    error_deg = error_arcsec / 3600.0
    vp.add_where_when(
        event,
        coords=vp.Position2D(
            ra=subject.ra_deg,
            dec=subject.dec_deg,
            err=error_deg,
            units="deg",
            system=vp.definitions.sky_coord_system.utc_icrs_geo,
        ),
        obs_time=observed.replace(microsecond=0),
        observatory_location=vp.definitions.observatory_location.geosurface,
    )
    vp.add_how(event, descriptions=f"DSA-110 continuum image, {subject.kind} alert from the contimg pipeline")
    vp.add_why(event, importance=IMPORTANCE.get(subject.kind, 0.5))
    # Appended by hand: voevent-parse 1.0.3's add_why(inferences=...) uses collections.Iterable, gone in 3.10.
    event.Why.append(vp.Inference(name=name, concept=CONCEPT.get(subject.kind)))
    try:
        vp.assert_valid_as_v2_0(event)
    except etree.DocumentInvalid as exc:
        raise ValueError(f"alert {subject.id}: the VOEvent is not valid VOEvent 2.0: {exc}") from exc
    return event.attrib["ivorn"], vp.dumps(event, pretty_print=True).decode()


def _param(name: str, value: Any, unit: str | None, ucd: str, description: str | None) -> vp.Param | None:
    """A numeric Param, or None for a missing or non-finite value (VOEvent has no NaN)."""
    if value is None or not math.isfinite(float(value)):
        return None
    param = vp.Param(name, value=float(value), unit=unit, ucd=ucd)
    if description:
        param.Description = description
    return param
