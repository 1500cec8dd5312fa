"""Errors a researcher can act on: each message is one line naming the file or key."""

from __future__ import annotations


class AudioprobeError(Exception):
    """Base class: stages print str(exc) on one line and exit non-zero."""


class ParamsError(AudioprobeError):
    """params.yaml is invalid (unknown key, wrong type, out-of-range value)."""


class DataError(AudioprobeError):
    """A dataset is missing, in the wrong layout, or holds bad files."""


class WeightsError(AudioprobeError):
    """Model weights are missing or unusable offline."""
