"""Shared fixtures. The synthetic data factories live in ``spikeinterface_sero.testing``; real .abf files
live in ../shared/abf (never copied here) and tests that need them skip cleanly when that folder is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_ABF = SHARED / "abf"
SHARED_MODELS = SHARED / "models" / "keras2-tf2.15"


def shared_abf_files():
    return sorted(SHARED_ABF.glob("*.abf")) if SHARED_ABF.is_dir() else []


@pytest.fixture
def shared_abf():
    if not SHARED_ABF.is_dir():
        pytest.skip("../shared/abf is not present on this machine")
    return SHARED_ABF


@pytest.fixture
def shared_models():
    if not SHARED_MODELS.is_dir():
        pytest.skip("../shared/models/keras2-tf2.15 is not present on this machine")
    return SHARED_MODELS


def load_fuzzer():
    """benchmarks/fuzz_abf.py as a module (one instance for every test that uses it)."""
    import importlib.util
    import sys

    if "fuzz_abf" in sys.modules and hasattr(sys.modules["fuzz_abf"], "mutate_structure"):
        return sys.modules["fuzz_abf"]
    spec = importlib.util.spec_from_file_location("fuzz_abf", ROOT / "benchmarks" / "fuzz_abf.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_abf"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def fuzz_report(result) -> str:
    """The escapes of a fuzz run, for an assertion message."""
    lines = [
        f"{e['outcome']} in case {e['case']} ({e['source']}; {e['mutation']}): {e['message']}"
        for e in result["escapes"][:20]
    ]
    return f"{result['n_escaped']} of {result['cases']} cases escaped:\n" + "\n".join(lines)
