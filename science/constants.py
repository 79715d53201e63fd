"""DSA-110 instrument constants: the one place they are defined.

Where the values come from: docs/instrument.md. Every other module imports them from here.
"""

from __future__ import annotations

# Dish and primary beam.
DISH_DIAMETER_M = 4.65

# Spectral layout: 16 subbands, sb00 the highest frequency, 48 channels each.
N_SUBBANDS = 16
CHANNELS_PER_SUBBAND = 48
CHANNEL_WIDTH_HZ = 244_140.625
# The correlator's channelisation: channel j of subband k is centred at
# 1.53 GHz − (1024 + 384·k + 8·j + 3.5) × 30517.578125 Hz (docs/instrument.md), descending within a subband.
CORRELATOR_REFERENCE_HZ = 1.53e9
FINE_CHANNEL_HZ = 30_517.578125


def channel_frequency_hz(subband: int, channel: int) -> float:
    """Centre (Hz) of channel ``channel`` (0-47) of subband ``subband`` (0-15) as the correlator has it."""
    return CORRELATOR_REFERENCE_HZ - (1024 + 384 * subband + 8 * channel + 3.5) * FINE_CHANNEL_HZ


# Centre of the lowest channel of the lowest subband (sb15); 768 channels then span ~1.311-1.499 GHz.
BAND_BOTTOM_HZ = channel_frequency_hz(15, 47)
POLARIZATIONS = ("XX", "YY")

# Time layout of one observation ("tile").
SECONDS_PER_DAY = 86_400.0
INTEGRATION_S = 12.884901888
INTEGRATIONS_PER_TILE = 24
TILE_DURATION_S = INTEGRATION_S * INTEGRATIONS_PER_TILE  # ~309 s

# Grouping of the per-subband files of one observation.
GROUP_TOLERANCE_S = 60.0
SUBBAND_WAIT_TIMEOUT_S = 120.0

# Station numbering: 1-102 are the core arms, 103-117 the outriggers.
N_STATIONS = 117
FIRST_OUTRIGGER = 103

# The telescope name written into files and Measurement Sets.
TELESCOPE_NAME = "DSA_110"

# Operators' default variability thresholds.
ETA_THRESHOLD = 2.0
V_THRESHOLD = 0.1
CHI2_NU_THRESHOLD = 3.0


def subband_name(index: int) -> str:
    """Return the correlator's name for subband ``index`` (``sb00`` ... ``sb15``)."""
    if not 0 <= index < N_SUBBANDS:
        raise ValueError(f"subband index {index} is outside 0..{N_SUBBANDS - 1}")
    return f"sb{index:02d}"


# Mid-band frequency (~1.405 GHz): the default for primary-beam models when an image carries no frequency.
BAND_CENTRE_HZ = BAND_BOTTOM_HZ + (N_SUBBANDS * CHANNELS_PER_SUBBAND - 1) / 2 * CHANNEL_WIDTH_HZ

# Primary-beam response (fraction of peak) below which photometry is flagged and mosaics drop pixels.
PB_CUTOFF = 0.1

# Assumed system-equivalent flux density of one dish, for simulated thermal noise. An estimate
# (Tsys ~25 K, aperture efficiency ~0.7 on a 4.65 m dish), not a measured value.
NOMINAL_SEFD_JY = 5800.0

# Length of a sidereal day: the same field transits again after this long.
SIDEREAL_DAY_S = 86164.0905
