"""Import the authors' published Keras members into a model folder, then classify with it.

    python examples/06_import_published_models.py [--out DIR] [--src ModelsDNN/BioModelDNN_BALANCED]

The published models (Corradetti et al. 2024, github.com/neuraldl/DLAtypicalSerotoninergicCells, folder
``ModelsDNN``) are one Keras file per member: ``ModConvBinNormN<k>.keras`` (biological models) and
``ModConvBinNormN<k>-v<session>.keras`` (synthetic-data training sessions). They are not redistributed
here, so without ``--src`` this script makes stand-ins of the same form: untrained members built with
``build_member(k)`` and saved under those names. Their labels are meaningless; the steps are the real ones.
(The tests import genuine Keras-2 / TensorFlow-2.15 files, .keras, .h5 and SavedModel, kept in
``../shared/models/keras2-tf2.15``, and compare with TensorFlow 2.15's own predictions.)

Command line equivalent:  sero import-models ModelsDNN/BioModelDNN_BALANCED --out published_model/
See docs/importing-published-models.md.
"""

import argparse
from pathlib import Path

from spikeinterface_sero import model
from spikeinterface_sero.datasets import simulate_drn_recording
from spikeinterface_sero.errors import ModelError
from spikeinterface_sero.snippets import abf_to_snippets


def make_stand_ins(models_dnn: Path) -> Path:
    """Author-style files: ModelsDNN/BioModelDNN_BALANCED/ModConvBinNormN<k>.keras and two training
    sessions of one synthetic model, ModelsDNN/SynthModelDNN/ModConvBinNormN<k>-v<session>.keras."""
    bio = models_dnn / "BioModelDNN_BALANCED"
    synth = models_dnn / "SynthModelDNN"
    bio.mkdir(parents=True, exist_ok=True)
    synth.mkdir(parents=True, exist_ok=True)
    for k in (20, 25):  # the published ensemble has k = 20 ... 31; two members keep this quick
        model.build_member(k).save(bio / f"ModConvBinNormN{k}.keras")
        for session in ("v1", "v2"):
            model.build_member(k).save(synth / f"ModConvBinNormN{k}-{session}.keras")
    return bio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sero_examples/06_import_published_models", help="output folder")
    parser.add_argument("--src", default=None, help="a folder of ModConvBinNormN<k> files (default: stand-ins)")
    args = parser.parse_args()
    out = Path(args.out)

    if args.src:
        src = Path(args.src)
    else:
        src = make_stand_ins(out / "ModelsDNN")
        print(f"made UNTRAINED stand-in members in {src.parent} (the real files are not redistributable)")

    # 1. Import: each file's kernel is read from its first convolution, the architecture is checked, the
    #    weights are copied into a clean member that must reproduce the file's outputs (to 1e-5), and a
    #    model folder (member_k<k>.keras + model_info.json + README.md model card) is written.
    folder = model.import_models(src, out / "published_model", overwrite=True)
    print(f"imported into {folder}: {sorted(p.name for p in folder.iterdir())}")

    # 2. Several sessions of one kernel are refused unless you say which one to take.
    if not args.src:
        synth = src.parent / "SynthModelDNN"
        try:
            model.import_models(synth, out / "synthetic_model", overwrite=True)
        except ModelError as e:
            print("without choose:", str(e).splitlines()[0])
        # one session for every kernel; or per kernel: choose={20: "v1", 25: "ModConvBinNormN25-v2.keras"}
        # (CLI: --choose v2, or --choose 20=v1 --choose 25=ModConvBinNormN25-v2.keras)
        model.import_models(synth, out / "synthetic_model", choose="v2", overwrite=True)
        print(f"imported session v2 into {out / 'synthetic_model'}")

    # 3. Load (checksums verified, Keras safe mode) and use it like any model folder.
    ensemble = model.load_model(folder)
    print(ensemble)
    print("source:", ensemble.info["source"]["files"])
    abf = simulate_drn_recording("serotonergic", duration_s=5.0, seed=11).to_abf(out / "cell.abf")
    snippets = abf_to_snippets(abf)
    print(ensemble.classify_cells(snippets).to_string(float_format="%.3f"))
    # In a SpikeInterface workflow: analyzer.compute("serotonergic", model_folder=folder);
    # from the command line: sero classify recordings/*.abf --model <folder>.


if __name__ == "__main__":
    main()
