"""Make the report views shown in docs/tutorial.md: ``python docs/images/make_images.py`` (about a minute).

Simulated recordings (spikeinterface_sero.datasets), the bundled demonstration model; the images are the
report's own figures (``report.plot_detection``, ``report.plot_population``) at a lower resolution.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from spikeinterface_sero import read_abf
from spikeinterface_sero.datasets import simulate_dataset, simulate_drn_recording, write_abf
from spikeinterface_sero.pipeline import classify_files
from spikeinterface_sero.report import plot_detection, plot_population
from spikeinterface_sero.snippets import recording_to_snippets

HERE = Path(__file__).resolve().parent
DPI = 80  # keeps each PNG under 150 kB


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cells = simulate_dataset({"serotonergic": 4, "atypical_serotonergic": 2, "non_serotonergic": 4}, 20.0, seed=11)
        files = [cell.to_abf(folder / f"{cell.cell_id}.abf") for cell in cells]
        # a cell whose action currents stay above -50 pA: the channel gives no spikes, and the view says why
        small = simulate_drn_recording("serotonergic", 20.0, seed=5, amplitude_pa=25.0, noise_sd_pa=3.0)
        files.append(write_abf(folder / "small_spikes.abf", small.traces, small.sampling_frequency))
        table = classify_files(files)
        plot_population(table[table["error"] == ""], dpi=DPI, demo=True).savefig(HERE / "population_view.png")
        for name, path in (("detection_view.png", files[0]), ("detection_no_spikes.png", files[-1])):
            recording = read_abf(path)
            snippets = recording_to_snippets(recording)
            figure = plot_detection(
                recording, [snippets.all_trigger_samples], snippets.detection, title=Path(path).stem, dpi=DPI
            )
            figure.savefig(HERE / name)
    for name in ("population_view.png", "detection_view.png", "detection_no_spikes.png"):
        print(f"{name}: {(HERE / name).stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
