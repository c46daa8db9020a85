"""The project's exceptions.

Every failure a user can cause (a bad file, a wrong parameter, a model folder that does not verify) is
raised as a :class:`SeroError` subclass whose message says what is wrong and what to do about it.  The CLI
prints that message on one line and exits non-zero; Python callers can catch :class:`SeroError`.
"""

from __future__ import annotations


class SeroError(Exception):
    """Base class of every error spikeinterface-sero raises on purpose."""


class AbfError(SeroError):
    """The file cannot be read as an Axon Binary Format recording (not ABF, truncated, corrupt,
    unsupported acquisition mode)."""


class ChannelError(SeroError):
    """No suitable current channel, or the requested channel does not exist."""


class SamplingRateError(SeroError):
    """The recording's sampling rate cannot give 160 samples over 4 ms."""


class DataError(SeroError):
    """The data are unusable: empty, constant, NaN/inf, wrong shape."""


class SnippetError(SeroError):
    """Snippets are not in the form the model needs (160 samples at 40 kHz, trigger at 40)."""


class ModelError(SeroError):
    """A model folder or model file is missing, does not verify, or is not the published architecture."""


class TrainingError(SeroError):
    """Training data or options are unusable."""


class ParameterError(SeroError, ValueError):
    """An argument or option has a value the function cannot use (wrong type, out of range, unknown choice).

    Raised before any work starts; the message names the argument in the words of the interface the user
    called (the Python argument from Python, the flag from the CLI)."""


class DemoModelWarning(UserWarning):
    """The labels come from the bundled demonstration model (trained on simulated recordings): not for
    scientific conclusions. Callers that say so another way (a ``model`` column, a CLI note) filter it."""


class SessionUnlikeRigWarning(UserWarning):
    """A recording session (a folder's cells of one date) is unlike every rig the model was validated on: none
    of its cells is reliable (``session_unlike_validated_rigs``, docs/validate.md, "Sessions")."""
