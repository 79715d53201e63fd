"""A write that runs out of space: reported as such, naming the path and the free space, with nothing
left behind, and the process that asked for it still alive (casacore itself aborts on a full disk)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from contimg.storage.nospace import is_no_space
from science.convert import convert_group
from science.grouping import find_groups
from science.simulate import SimulatedObservation
from tests.storage.conftest import leave_free


def test_a_conversion_onto_a_full_disk_raises_enospc_and_leaves_no_partial_ms(
    small_disk: Path, observations: list[SimulatedObservation]
) -> None:
    (group,) = find_groups(observations[0].subband_paths[0].parent)
    out = small_disk / "ms"
    out.mkdir()
    leave_free(small_disk, 500_000)  # an MS of this observation takes about 1.9 MB
    with pytest.raises(OSError) as err:
        convert_group(group, out)
    assert err.value.errno == errno.ENOSPC
    assert is_no_space(err.value)
    assert f"no space left writing {out}/.{group.group_id}.ms.partial-" in str(err.value)
    assert "bytes free on" in str(err.value)
    assert list(out.iterdir()) == []
    # With room again, the same call succeeds: nothing of the failed attempt is in the way.
    (small_disk / "ballast").unlink()
    assert convert_group(group, out).ms_path == out / f"{group.group_id}.ms"


@pytest.mark.parametrize(
    ("exc", "full"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (RuntimeError("FilebufIO: write error for file x/table.f0: No space left on device"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (ValueError("bad"), False),
    ],
)
def test_what_counts_as_a_full_disk(exc: BaseException, full: bool) -> None:
    assert is_no_space(exc) is full
    try:
        raise RuntimeError("while writing") from exc
    except RuntimeError as wrapped:
        assert is_no_space(wrapped) is full
