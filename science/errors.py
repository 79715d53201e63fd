"""Exceptions shared across the pipeline.

An :class:`InvalidInputError` means the input itself is bad: retrying the task cannot help, so the
queue fails it at once. Anything else (including :class:`GroupNotReadyError`) may succeed later.
"""

from __future__ import annotations

from pathlib import Path


class InvalidInputError(Exception):
    """Input a caller supplied (a file, a parameter, a catalogue row) cannot be used as given."""


class CorruptFileError(InvalidInputError):
    """A subband file cannot be read (truncated or not a valid UVH5 file)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: cannot read as UVH5 ({reason}); re-copy or delete the file")


class ChannelMismatchError(InvalidInputError):
    """One subband file has a different number of channels from its siblings."""

    def __init__(self, path: Path, n_channels: int, expected: int) -> None:
        self.path = Path(path)
        super().__init__(
            f"{self.path}: has {n_channels} channels but the other subbands of its group have {expected}"
        )


class SubbandMismatchError(InvalidInputError):
    """Subband files of one group disagree on times, antennas or polarisations."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: does not match the other subbands of its group ({reason})")


class MissingSubbandError(InvalidInputError):
    """A group lacks subbands and the policy says not to convert it (policy ``skip``)."""

    def __init__(self, group_id: str, missing: list[str], directory: Path | None = None) -> None:
        self.group_id = group_id
        self.missing = list(missing)
        files = ", ".join(f"*_{name}.hdf5" for name in missing)
        where = f" in {directory}" if directory is not None else ""
        super().__init__(
            f"group {group_id}: subbands {', '.join(missing)} are missing (no file {files} of this "
            f"observation exists{where}); convert with the 'flag' policy to accept a partial band"
        )


class GroupNotReadyError(Exception):
    """A group lacks subbands that may still arrive (policy ``wait``); try again later."""

    def __init__(self, group_id: str, missing: list[str]) -> None:
        self.group_id = group_id
        self.missing = list(missing)
        super().__init__(f"group {group_id}: still waiting for subbands {', '.join(missing)}")
