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
