"""Header fields that do not affect the data (the recording date and time) never make a file "corrupt"."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.io import read_abf

# byte offset of the start date and of the start time in the header (ABF1: lFileStartDate, lFileStartTime;
# ABF2: uFileStartDate, uFileStartTimeMS)
DATE_TIME_OFFSETS = {1: (20, 24), 2: (16, 20)}
VALUES = [0, 0xFFFFFFFF, 0x7FFFFFFF, 99_999_999, 20_251_399, 20_250_230, 20_250_100, 1]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("field", [0, 1], ids=["date", "time"])
@pytest.mark.parametrize("value", VALUES)
def test_impossible_dates_and_times_still_read(tmp_path, version, field, value):
    x = np.random.default_rng(0).normal(0, 2, 20_000).astype(np.float32)
    original = write_abf(tmp_path / "x.abf", x, 40_000.0, version=version)
    data = bytearray(original.read_bytes())
    offset = DATE_TIME_OFFSETS[version][field]
    data[offset : offset + 4] = struct.pack("<I", value)
    mutated = tmp_path / "mutated.abf"
    mutated.write_bytes(bytes(data))
    traces = read_abf(mutated).get_traces(return_in_uV=True)[:, 0]
    np.testing.assert_array_equal(traces, read_abf(original).get_traces(return_in_uV=True)[:, 0])
