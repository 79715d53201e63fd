"""``contimg simulate``: write simulated DSA-110 observations (16 UVH5 subbands plus truth files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from contimg.cli.base import science_app
from science.simulate import (
    Faults,
    NoiseModel,
    ObservationConfig,
    SimulatedObservation,
    calibrator_transit,
    epoch_series,
    simulate_epochs,
    simulate_observation,
    target_field,
)

app = science_app(help="Simulate DSA-110 drift-scan observations as correlator-style UVH5 subband files.")

OutDir = Annotated[Path, typer.Option("--out-dir", help="Directory for the subband files and truth files.")]
Antennas = Annotated[int, typer.Option(help="Number of stations (a spread subset; 117 for all).")]
Channels = Annotated[int, typer.Option(help="Channels per subband (the real correlator has 48).")]
Integrations = Annotated[int, typer.Option(help="Integrations of 12.885 s (a real tile has 24).")]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")]
GainSeed = Annotated[
    int | None, typer.Option(help="Separate seed for the gains, to share them between runs.")
]
Sigma = Annotated[
    float | None, typer.Option(help="Explicit noise sigma per visibility (Jy); default from SEFD.")
]
NoNoise = Annotated[bool, typer.Option("--no-noise", help="Write noiseless data.")]
NoGains = Annotated[bool, typer.Option("--no-gains", help="Write unit gains.")]
Layout = Annotated[
    str,
    typer.Option(
        help="correlator: the real writer's layout (fringestopped, float32 uvw, 117-antenna table); "
        "unprojected: pyuvdata's layout with raw data."
    ),
]
FaultsJson = Annotated[
    str | None,
    typer.Option(
        "--faults",
        help='Real-life faults as JSON, e.g. \'{"nan_last_integration": 0.5, "dead_stations": [12], '
        '"rfi_channels": [[4, 3]], "shifted_subband": 2}\' (fields of science.simulate.Faults).',
    ),
]


def _layout_and_faults(layout: str, faults: str | None) -> dict[str, Any]:
    if layout not in ("correlator", "unprojected"):
        raise typer.BadParameter(f"{layout!r}: choose correlator or unprojected", param_hint="--layout")
    fields: dict[str, Any] = {"layout": layout}
    if faults:
        try:
            fields["faults"] = Faults.model_validate_json(faults)
        except ValidationError as exc:
            raise typer.BadParameter(str(exc), param_hint="--faults") from exc
    return fields


def _common(
    n_antennas: int,
    n_channels: int,
    n_integrations: int,
    seed: int,
    gain_seed: int | None,
    noise_sigma: float | None,
    no_noise: bool,
    no_gains: bool,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "n_antennas": n_antennas,
        "n_channels": n_channels,
        "n_integrations": n_integrations,
        "seed": seed,
        "gain_seed": gain_seed,
    }
    if no_noise:
        fields["noise"] = None
    elif noise_sigma is not None:
        fields["noise"] = NoiseModel(sigma_jy=noise_sigma)
    if no_gains:
        fields["gains"] = None
    return fields


def _report(observations: list[SimulatedObservation]) -> None:
    for obs in observations:
        typer.echo(obs.model_dump_json())


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@app.command("calibrator")
def calibrator(
    out_dir: OutDir,
    near: Annotated[datetime, typer.Option(help="UTC time near which the calibrator transits.")],
    name: Annotated[str, typer.Option(help="A calibrator of the catalogue; it gives the model.")] = "3C286",
    ra_deg: Annotated[float | None, typer.Option(help="Override the catalogue's RA (deg).")] = None,
    dec_deg: Annotated[float | None, typer.Option(help="Override the catalogue's Dec (deg).")] = None,
    flux_jy: Annotated[float | None, typer.Option(help="Override the catalogue's 1.4 GHz flux.")] = None,
    spectral_index: Annotated[float | None, typer.Option(help="Override the catalogue's index.")] = None,
    n_antennas: Antennas = 24,
    n_channels: Channels = 8,
    n_integrations: Integrations = 10,
    seed: Seed = 0,
    gain_seed: GainSeed = None,
    noise_sigma: Sigma = None,
    no_noise: NoNoise = False,
    no_gains: NoGains = False,
    layout: Layout = "correlator",
    faults: FaultsJson = None,
) -> None:
    """A calibrator transiting the meridian at the mid-time of the observation."""
    common = _common(n_antennas, n_channels, n_integrations, seed, gain_seed, noise_sigma, no_noise, no_gains)
    common |= _layout_and_faults(layout, faults)
    config = calibrator_transit(
        _utc(near),
        name=name,
        ra_deg=ra_deg,
        dec_deg=dec_deg,
        flux_jy=flux_jy,
        spectral_index=spectral_index,
        **common,
    )
    _report([simulate_observation(config, out_dir)])


@app.command("target")
def target(
    out_dir: OutDir,
    start_time: Annotated[datetime, typer.Option(help="UTC start of the observation.")],
    dec_deg: Annotated[float, typer.Option(help="Pointing declination (degrees).")],
    extended: Annotated[bool, typer.Option(help="Add an elliptical Gaussian source.")] = False,
    n_antennas: Antennas = 24,
    n_channels: Channels = 8,
    n_integrations: Integrations = 10,
    seed: Seed = 0,
    gain_seed: GainSeed = None,
    noise_sigma: Sigma = None,
    no_noise: NoNoise = False,
    no_gains: NoGains = False,
    layout: Layout = "correlator",
    faults: FaultsJson = None,
) -> None:
    """A field of five point sources from 500 to 10 mJy around the pointing centre."""
    common = _common(n_antennas, n_channels, n_integrations, seed, gain_seed, noise_sigma, no_noise, no_gains)
    common |= _layout_and_faults(layout, faults)
    config = target_field(_utc(start_time), dec_deg, extended=extended, **common)
    _report([simulate_observation(config, out_dir)])


@app.command("epochs")
def epochs(
    out_dir: OutDir,
    start_time: Annotated[datetime, typer.Option(help="UTC start of the first epoch.")],
    dec_deg: Annotated[float, typer.Option(help="Pointing declination (degrees).")],
    lightcurve: Annotated[str, typer.Option(help="Comma-separated flux multipliers, one per epoch.")],
    variable: Annotated[str, typer.Option(help="Name of the varying source.")] = "T2",
    n_antennas: Antennas = 24,
    n_channels: Channels = 8,
    n_integrations: Integrations = 10,
    seed: Seed = 0,
    gain_seed: GainSeed = None,
    noise_sigma: Sigma = None,
    no_noise: NoNoise = False,
    no_gains: NoGains = False,
) -> None:
    """Repeated transits of the target field, one sidereal day apart, with one source varying."""
    common = _common(n_antennas, n_channels, n_integrations, seed, gain_seed, noise_sigma, no_noise, no_gains)
    try:
        factors = [float(x) for x in lightcurve.split(",") if x.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"lightcurve must be numbers separated by commas: {exc}") from exc
    base = target_field(_utc(start_time), dec_deg, **common)
    _report(simulate_epochs(epoch_series(base, variable, factors), out_dir))


@app.command("from-config")
def from_config(
    config_path: Annotated[Path, typer.Argument(help="JSON file holding an ObservationConfig.")],
    out_dir: OutDir,
) -> None:
    """Simulate an observation described in full by a JSON ObservationConfig."""
    config = ObservationConfig.model_validate_json(config_path.read_text())
    _report([simulate_observation(config, out_dir)])
