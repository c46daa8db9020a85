"""SpikeInterface's own common extension test suite run, unmodified, on the ``serotonergic`` extension.

``AnalyzerExtensionCommonTestSuite`` (``spikeinterface/postprocessing/tests/common_extension_tests.py``)
computes an extension with ``n_jobs=2, chunk_duration="1s", progress_bar=True`` on its 24 kHz, 6-channel,
2-segment ground-truth data set, in memory, binary-folder and zarr formats, dense and sparse, then selects,
soft-merges and reloads. SpikeInterface leaves its tests out of its wheel and its sdist, so the suite is
imported from ``spikeinterface.postprocessing.tests`` when that is installed (an editable install of a
SpikeInterface checkout), else from the checkout named by the environment variable
``SPIKEINTERFACE_SOURCE``; without either this module is skipped, saying so.

SpikeInterface's core analyzer tests use a 16 kHz data set, which the method refuses by design (below
20 kHz a 4 ms, 160-point snippet at 40 kHz cannot be recovered): that case is skipped with the reason,
and the refusal itself is tested in ``test_core_rate_is_refused_with_a_clear_message``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import spikeinterface_sero  # noqa: F401 - registers the extension
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.extension import ComputeSerotonergic

# the demo model's "DEMONSTRATION" warning and the adapted analyzer's out-of-domain warning
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SUITE_MODULE = "spikeinterface.postprocessing.tests.common_extension_tests"
SUITE_PATH = Path("spikeinterface", "postprocessing", "tests", "common_extension_tests.py")


def _suite_module():
    """SpikeInterface's common extension test module, or None when neither installed nor checked out."""
    try:
        return importlib.import_module(SUITE_MODULE)
    except ImportError:
        pass
    source = os.environ.get("SPIKEINTERFACE_SOURCE")
    if not source:
        return None
    for path in (Path(source) / "src" / SUITE_PATH, Path(source) / SUITE_PATH):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("spikeinterface_common_extension_tests", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(f"SPIKEINTERFACE_SOURCE={source!r} holds no src/{SUITE_PATH.as_posix()}")


suite = _suite_module()
NOT_INSTALLED = (
    "SpikeInterface's test modules are not installed (its wheel and sdist leave them out): set "
    "SPIKEINTERFACE_SOURCE to a SpikeInterface checkout of the installed version to run its common "
    "extension suite on the 'serotonergic' extension"
)


@pytest.fixture(scope="module")
def create_cache_folder(tmp_path_factory):
    """The fixture SpikeInterface's own conftest.py gives its suite."""
    return tmp_path_factory.mktemp("cache_folder")


if suite is None:

    @pytest.mark.skip(reason=NOT_INSTALLED)
    def test_spikeinterface_common_extension_suite():  # pragma: no cover - says why the suite did not run
        raise AssertionError(NOT_INSTALLED)

else:

    class TestSerotonergicExtension(suite.AnalyzerExtensionCommonTestSuite):
        """The suite's every format and sparsity, with n_jobs=2.

        The suite computes ``waveforms`` with SpikeInterface's default window (1 ms + 2 ms, too short for the
        model's once resampled from 24 kHz), so the extension is asked to re-extract them (``reextract=True``).
        ``method="criteria"`` is not run here: its per-spike P(SER) is NaN by design (no model), and the suite
        compares arrays with ``np.array_equal``, for which NaN differs from NaN.
        """

        @pytest.mark.parametrize(
            "params",
            [dict(n_boot=20, reextract=True), dict(n_boot=20, reextract=True, flip_positive=True, min_spikes=5)],
            ids=["default", "flip_positive"],
        )
        def test_extension(self, params):
            self.run_extension_tests(ComputeSerotonergic, params)

        @pytest.mark.skip(
            reason="SpikeInterface's core data set is sampled at 16 kHz, which the method refuses by design"
        )
        def test_core_data_set(self):  # pragma: no cover - documents the case left out
            raise AssertionError("skipped")


def test_core_rate_is_refused_with_a_clear_message():
    """SpikeInterface's core data set (16 kHz) is refused by a SeroError that names the rate, not a traceback."""
    from spikeinterface.core import create_sorting_analyzer, generate_ground_truth_recording

    recording, sorting = generate_ground_truth_recording(
        durations=[3.0], sampling_frequency=16000.0, num_channels=4, num_units=2, seed=2205
    )
    analyzer = create_sorting_analyzer(sorting, recording, format="memory", sparse=False)
    analyzer.compute(["random_spikes", "waveforms"], n_jobs=2)
    with pytest.raises(SeroError, match="kHz|Hz") as caught:
        analyzer.compute("serotonergic", n_boot=20, n_jobs=2)
    assert "16" in str(caught.value)
    assert not analyzer.has_extension("serotonergic")
    assert np.asarray(analyzer.unit_ids).size == 2
