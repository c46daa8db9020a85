"""The CNN ensemble of Corradetti et al. (J Neurosci Methods 2024): the member network, fast inference,
model folders, import of the published Keras-2 models, and Grad-CAM.

One module per concern: ``architecture`` (the member and its input), ``ensemble`` (inference),
``numpy_engine`` (the fused forward pass in numpy) and ``weights`` (member weights read with h5py),
``info`` and ``folder`` (model folders), ``published`` (import), ``gradcam``. Every name is importable from
here; TensorFlow is imported only by the functions that need it (predicting with a loaded model folder
does not).
"""

from __future__ import annotations

from ..decision import cell_decisions as cell_decisions
from .architecture import (
    MEMBER_INPUT_SHAPE,
    TIME_COLUMN,
    build_member,
    check_member_architecture,
    member_kernel,
    to_member_input,
)
from .ensemble import ENGINES, Ensemble, predict_members_naive, random_ensemble
from .folder import clear_model_cache, demo_model_folder, load_model, save_model
from .gradcam import gradcam, plot_gradcam
from .info import MODEL_FORMAT_VERSION
from .numpy_engine import NumpyEngine
from .published import import_models
from .weights import MemberWeights, read_member_weights

__all__ = [
    "MODEL_FORMAT_VERSION",
    "MEMBER_INPUT_SHAPE",
    "TIME_COLUMN",
    "build_member",
    "member_kernel",
    "check_member_architecture",
    "to_member_input",
    "ENGINES",
    "Ensemble",
    "NumpyEngine",
    "MemberWeights",
    "read_member_weights",
    "random_ensemble",
    "predict_members_naive",
    "demo_model_folder",
    "save_model",
    "load_model",
    "clear_model_cache",
    "import_models",
    "gradcam",
    "plot_gradcam",
]
