"""Argument checks shared by the public API and the CLI: one clear :class:`~.errors.ParameterError` each."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

from .errors import ParameterError

__all__ = ["check_flag", "check_integer", "check_number", "check_choice", "check_path"]


def check_flag(value, name: str) -> bool:
    """``value`` if it is a real bool (numpy bools included); a string such as ``"false"`` is refused.

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name in the caller's interface (``"trust_model"``, ``"--trust"``).

    Returns
    -------
    bool
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ParameterError(f"{name} must be True or False, not {value!r}.")


def check_integer(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int when it is a whole number within [minimum, maximum] (bools refused).

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name in the caller's interface.
    minimum, maximum : int or None, default: None
        Inclusive bounds; None: unbounded.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
            value = int(value)
        else:
            raise ParameterError(f"{name} must be a whole number, not {value!r}.")
    value = int(value)
    _check_bounds(value, name, minimum, maximum)
    return value


def check_number(
    value, name: str, *, minimum: float | None = None, maximum: float | None = None, strict: bool = False
) -> float:
    """``value`` as a finite float within the bounds (``strict``: bounds excluded; bools refused).

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name in the caller's interface.
    minimum, maximum : float or None, default: None
        Bounds; None: unbounded.
    strict : bool, default: False
        Exclude the bounds themselves.

    Returns
    -------
    float
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be a finite number, not {value!r}.")
    value = float(value)
    _check_bounds(value, name, minimum, maximum, strict=strict)
    return value


def check_choice(value, name: str, choices) -> str:
    """``value`` when it is one of ``choices`` (strings).

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name in the caller's interface.
    choices : sequence of str
        The accepted values.

    Returns
    -------
    str
    """
    if not isinstance(value, str) or value not in tuple(choices):
        listed = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name} must be one of {listed}, not {value!r}.")
    return value


def check_path(value, name: str) -> Path:
    """``value`` as a Path when it is a non-empty str or os.PathLike; ParameterError naming ``name`` if not.

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name in the caller's interface.

    Returns
    -------
    Path
    """
    if isinstance(value, (str, os.PathLike)) and str(value).strip():
        return Path(value)
    raise ParameterError(f"{name} must be a file path (str or pathlib.Path), not {value!r}.")


def _check_bounds(value, name, minimum, maximum, *, strict: bool = False) -> None:
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise ParameterError(f"{name} must be {'above' if strict else 'at least'} {minimum:g}, not {value:g}.")
    if maximum is not None and (value > maximum or (strict and value == maximum)):
        raise ParameterError(f"{name} must be {'below' if strict else 'at most'} {maximum:g}, not {value:g}.")
