"""Physical units of a channel: current (scaled to pA with ``quantities``), voltage, or unknown."""

from __future__ import annotations

import quantities as pq

__all__ = ["current_to_pa", "is_current_unit", "is_voltage_unit"]

# header spellings that quantities reads as something else ("pa" is a pascal) or not at all
_SPELLINGS = {"fa": "fA", "pa": "pA", "na": "nA", "ua": "uA", "ma": "mA", "a": "A", "amp": "A", "amps": "A"}


def _quantity(unit) -> pq.Quantity | None:
    if unit is None:
        return None
    text = str(unit).strip().replace("µ", "u").replace("μ", "u").replace(" ", "")
    text = _SPELLINGS.get(text.lower(), text)
    if not text:
        return None
    try:
        return pq.Quantity(1.0, text)
    except (LookupError, ValueError, TypeError, SyntaxError):
        return None


def current_to_pa(unit) -> float | None:
    """The factor from ``unit`` to picoamperes, or None when ``unit`` is not a current.

    Parameters
    ----------
    unit : str
        As a header or ``physical_unit`` property writes it ("pA", "nA", "A", "µA", ...).

    Returns
    -------
    float or None
    """
    if unit is not None and str(unit).strip().lower() == "fa":  # quantities has no femtoampere
        return 1e-3
    quantity = _quantity(unit)
    if quantity is None or quantity.dimensionality.simplified != pq.A.dimensionality.simplified:
        return None
    return float(f"{float(quantity.rescale(pq.pA).magnitude):.12g}")  # 1000.0, not 999.9999999999999


def is_current_unit(unit) -> bool:
    """True when ``unit`` is a current."""
    return current_to_pa(unit) is not None


def is_voltage_unit(unit) -> bool:
    """True when ``unit`` is a voltage (V, mV, µV ...)."""
    quantity = _quantity(unit)
    return quantity is not None and quantity.dimensionality.simplified == pq.V.dimensionality.simplified
