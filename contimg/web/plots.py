"""Server-drawn SVG charts: a light curve with error bars, and the η–V plane where each point links to
its source. Plain SVG strings, no JavaScript; hovering a point shows its values (an SVG <title>)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from science.lightcurves import SourceLightcurve

W, H = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 16, 46


def _ticks(lo: float, hi: float, n: int = 5, log: bool = False) -> list[float]:
    if log and hi - lo >= 1.5:
        # Whole decades on a logarithmic axis.
        return [float(d) for d in range(math.ceil(lo), math.floor(hi) + 1)]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * step:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


class _Frame:
    def __init__(self, xlo: float, xhi: float, ylo: float, yhi: float, log: bool = False) -> None:
        self.log = log
        pad_x = (xhi - xlo) * 0.05 or 0.5
        pad_y = (yhi - ylo) * 0.08 or max(abs(yhi) * 0.1, 1e-6)
        self.xlo, self.xhi, self.ylo, self.yhi = xlo - pad_x, xhi + pad_x, ylo - pad_y, yhi + pad_y

    def x(self, v: float) -> float:
        return LEFT + (v - self.xlo) / (self.xhi - self.xlo) * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return H - BOTTOM - (v - self.ylo) / (self.yhi - self.ylo) * (H - TOP - BOTTOM)

    def axes(self, xlabel: str, ylabel: str, fmt_x: str = "{:g}", fmt_y: str = "{:g}") -> list[str]:
        """The frame, ticks and labels."""
        out = [
            f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
            'class="frame"/>'
        ]
        for t in _ticks(self.xlo, self.xhi, log=self.log):
            x = self.x(t)
            out.append(
                f'<line x1="{x:.1f}" y1="{H - BOTTOM}" x2="{x:.1f}" y2="{H - BOTTOM + 5}" class="tick"/>'
            )
            label = fmt_x.format(10**t if self.log else t)
            out.append(
                f'<text x="{x:.1f}" y="{H - BOTTOM + 18}" class="tl" text-anchor="middle">{label}</text>'
            )
        for t in _ticks(self.ylo, self.yhi, log=self.log):
            y = self.y(t)
            out.append(f'<line x1="{LEFT - 5}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" class="tick"/>')
            label = fmt_y.format(10**t if self.log else t)
            out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" class="tl" text-anchor="end">{label}</text>')
        out.append(
            f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" class="al" text-anchor="middle">{xlabel}</text>'
        )
        out.append(
            f'<text x="14" y="{(TOP + H - BOTTOM) / 2}" class="al" text-anchor="middle" '
            f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})">{ylabel}</text>'
        )
        return out


def _svg(body: list[str], label: str, attrs: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {H}" '
        f'width="{W}" height="{H}" {attrs}'
        f'role="img" aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def lightcurve_svg(
    curve: SourceLightcurve, normalised: bool = False, mjd_range: tuple[float, float] | None = None
) -> str:
    """Flux against MJD with 1σ error bars, measured or reference-normalised; optionally a time range."""
    epochs = [e for e in curve.epochs if mjd_range is None or mjd_range[0] <= e.mjd <= mjd_range[1]]
    if not epochs:
        return _svg([f'<text x="{LEFT}" y="{H / 2}">no epochs in range</text>'], "empty light curve")
    pts = [
        (
            e.mjd,
            e.norm_flux_jy if normalised else e.flux_jy,
            e.norm_flux_err_jy if normalised else e.flux_err_jy,
            e,
        )
        for e in epochs
    ]
    scale = 1e3  # mJy on the axis
    f = _Frame(
        min(p[0] for p in pts), max(p[0] for p in pts),
        min((p[1] - p[2]) * scale for p in pts), max((p[1] + p[2]) * scale for p in pts),
    )  # fmt: skip
    kind = "normalised" if normalised else "measured"
    body = f.axes("MJD", f"{kind} flux (mJy)", "{:.2f}")
    for mjd, flux, err, e in pts:
        x, y = f.x(mjd), f.y(flux * scale)
        y1, y2 = f.y((flux - err) * scale), f.y((flux + err) * scale)
        snr = f"{e.snr:.1f}" if e.snr is not None else "–"
        body.append(
            f'<g class="pt {kind}" data-mjd="{mjd:.6f}" data-flux="{flux:.6g}"><title>MJD {mjd:.5f}: '
            f"{flux * scale:.3f} ± {err * scale:.3f} mJy, SNR {snr}</title>"
            f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" class="err"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"/></g>'
        )
    # The x scale, for the drag-to-zoom of static/lightcurve.js: plot columns x0..x1 span MJD lo..hi.
    scale_attrs = (
        f'data-zoom="mjd" data-x0="{LEFT}" data-x1="{W - RIGHT}" data-lo="{f.xlo:.6f}" data-hi="{f.xhi:.6f}" '
    )
    return _svg(body, f"{kind} light curve of {curve.name}", scale_attrs)


def eta_v_svg(rows: Sequence[dict[str, Any]], eta_cut: float, v_cut: float) -> str:
    """log η against log V for every source with both; dashed lines at the cuts; a click opens the
    source. Sources beyond both cuts are drawn as candidates."""
    pts = [r for r in rows if r.get("eta") and r.get("v") and r["eta"] > 0 and r["v"] > 0]
    if not pts:
        return _svg([f'<text x="{LEFT}" y="{H / 2}">no source has η and V yet</text>'], "empty η–V plot")
    xs = [math.log10(r["v"]) for r in pts] + [math.log10(v_cut)]
    ys = [math.log10(r["eta"]) for r in pts] + [math.log10(eta_cut)]
    f = _Frame(min(xs), max(xs), min(ys), max(ys), log=True)
    body = f.axes("V (fractional modulation)", "η (reduced χ²)", "{:.3g}", "{:.3g}")
    cx, cy = f.x(math.log10(v_cut)), f.y(math.log10(eta_cut))
    body.append(f'<line x1="{cx:.1f}" y1="{TOP}" x2="{cx:.1f}" y2="{H - BOTTOM}" class="cut"/>')
    body.append(f'<line x1="{LEFT}" y1="{cy:.1f}" x2="{W - RIGHT}" y2="{cy:.1f}" class="cut"/>')
    for r in pts:
        x, y = f.x(math.log10(r["v"])), f.y(math.log10(r["eta"]))
        cls = "cand" if r["eta"] >= eta_cut and r["v"] >= v_cut else "src"
        name = str(r["name"])
        body.append(
            f'<a href="/sources/{quote(name, safe="")}" class="{cls}" data-name="{escape(name)}">'
            f"<title>{escape(name)}: η {r['eta']:.3g}, V {r['v']:.3g}</title>"
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5"/></a>'
        )
    return _svg(body, "η–V plane")
