"""The member network of Corradetti et al. (J Neurosci Methods 2024), its input encoding, and the checks that
a Keras model is exactly that network.

Output unit 0 is *serotonergic*, unit 1 *non-serotonergic*.
"""

from __future__ import annotations

import numpy as np

from ..constants import SAMPLING_FREQUENCY, SNIPPET_LENGTH
from ..errors import DataError, ModelError, SnippetError
from ._backend import _keras
from .spec import MEMBER_INPUT_SHAPE, check_kernel, config_problems, member_layers

__all__ = [
    "MEMBER_INPUT_SHAPE",
    "TIME_COLUMN",
    "build_member",
    "member_kernel",
    "check_member_architecture",
    "to_member_input",
]

TIME_COLUMN = (np.arange(SNIPPET_LENGTH, dtype=np.float64) / SAMPLING_FREQUENCY).astype(np.float32)
"""Column 0 of every member input: the sample time in seconds from the window start."""


# --------------------------------------------------------------------------------------------------------
# The member network
# --------------------------------------------------------------------------------------------------------
def build_member(kernel_size: int):
    """One member of the ensemble, the authors' Keras ``Sequential`` for kernel size ``k``, built from the
    member specification (:mod:`~spikeinterface_sero.model.spec`).

    Parameters
    ----------
    kernel_size : int
        The convolution length k, 1-31 (the published ensemble uses 20-31).

    Returns
    -------
    keras.Sequential
        Input ``(160, 2, 1)``: column 0 the sample time in seconds, column 1 the current in pA (build it
        with :func:`to_member_input`). Output ``(2,)`` sigmoid: unit 0 serotonergic, unit 1
        non-serotonergic. Layer names follow the authors' (``conv2d``, ``conv2d_1``, ...), as Grad-CAM in
        their notebook used. For k = 20 the model has 45,218 parameters. Weights are freshly initialised.

    Notes
    -----
    The published member, layer by layer::

        LayerNormalization(axis=[1]) -> Conv2D(32, (k, 1), relu) -> MaxPooling2D((2, 1))
        -> Conv2D(64, (k, 1), relu) -> MaxPooling2D((2, 2)) -> Flatten -> Dropout(0.5) -> Dense(2, sigmoid)
    """
    k = check_kernel(kernel_size)
    keras = _keras()
    layers = [
        getattr(keras.layers, layer.class_name)(name=layer.name, **layer.keras_arguments())
        for layer in member_layers(k)
    ]
    return keras.Sequential([keras.Input(shape=MEMBER_INPUT_SHAPE, name="input_1"), *layers], name=f"member_k{k}")


def _plain_layers(model) -> list:
    keras = _keras()
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def member_kernel(model) -> int:
    """The kernel size of a member, read from its first convolution (not from its name).

    Parameters
    ----------
    model : keras.Model
        A member (any Keras model with a ``Conv2D`` layer).

    Returns
    -------
    int
        The first convolution's kernel length; :class:`~spikeinterface_sero.errors.ModelError` when the
        model has no ``Conv2D`` layer.
    """
    keras = _keras()
    for layer in _plain_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            return int(layer.kernel_size[0])
    raise ModelError(f"model {getattr(model, 'name', model)!r} has no Conv2D layer: not a serotonergic-CNN member")


def _input_shape(model) -> tuple | None:
    try:
        shape = model.inputs[0].shape
    except Exception:  # noqa: BLE001 - unbuilt or exotic models
        return None
    return tuple(None if d is None else int(d) for d in shape)


def _output_shape(model) -> tuple | None:
    try:
        shape = model.outputs[0].shape
    except Exception:  # noqa: BLE001
        return None
    return tuple(None if d is None else int(d) for d in shape)


def _architecture_problems(model, *, float32: bool = False) -> list[str]:
    """Every way ``model`` differs from the member specification (empty when it is the published member)."""
    if len(getattr(model, "inputs", None) or []) != 1 or len(getattr(model, "outputs", None) or []) != 1:
        return ["the model must have exactly one input and one output"]
    problems = []
    shape = _input_shape(model)
    if shape is None or shape[1:] != MEMBER_INPUT_SHAPE:
        problems.append(f"input shape is {shape}, the published members take (None, 160, 2, 1)")
    layers = [(type(layer).__name__, layer.get_config()) for layer in _plain_layers(model)]
    return problems + config_problems(layers, float32=float32)


def check_member_architecture(model) -> int:
    """Check that ``model`` is exactly the published member and return its kernel size.

    Parameters
    ----------
    model : keras.Model
        The model to check (layer types and order, sizes, activations, input (160, 2, 1)).

    Returns
    -------
    int
        The kernel size; :class:`~spikeinterface_sero.errors.ModelError` listing every difference otherwise.
    """
    problems = _architecture_problems(model)
    if problems:
        raise ModelError(
            f"model {getattr(model, 'name', '?')!r} is not the published member architecture: " + "; ".join(problems)
        )
    return member_kernel(model)


def _is_published(model) -> bool:
    """True when ``model`` is the published member in float32 (it can then run on the fused path)."""
    try:
        return not _architecture_problems(model, float32=True)
    except Exception:  # noqa: BLE001 - an exotic model is simply not the published one
        return False


# --------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------
def _as_snippets(snippets) -> np.ndarray:
    """Validate snippets and return them as a C-contiguous float32 (n, 160) array."""
    if hasattr(snippets, "waveforms") and not isinstance(snippets, np.ndarray):  # a Snippets object
        snippets = snippets.waveforms
    try:
        x = np.asarray(snippets)
    except Exception as exc:  # noqa: BLE001
        raise SnippetError(f"snippets could not be read as an array ({exc}); pass an (n, 160) array in pA") from None
    need = "an (n, 160) float array (n spikes x 160 samples at 40 kHz, trigger at index 40, in pA)"
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise SnippetError(f"snippets have dtype {x.dtype}; the model needs {need}")
    if x.ndim == 3 and x.shape[1:] == (SNIPPET_LENGTH, 1):
        x = x[:, :, 0]
    if x.ndim != 2 or x.shape[1] != SNIPPET_LENGTH:
        hint = ""
        if x.ndim == 1 and x.shape[0] == SNIPPET_LENGTH:
            hint = " (one spike: use snippet[None, :])"
        elif x.ndim == 4 and x.shape[1:] == MEMBER_INPUT_SHAPE:
            hint = " (this looks like member input (n, 160, 2, 1): pass its current column X[..., 1, 0])"
        elif x.ndim == 2 and x.shape[0] == SNIPPET_LENGTH:
            hint = " (transposed? use snippets.T)"
        elif x.ndim >= 2 and x.shape[-1] != SNIPPET_LENGTH:
            hint = " (the model needs exactly 160 samples = 1 ms before + 3 ms after the trigger at 40 kHz)"
        raise SnippetError(f"snippets have shape {x.shape}; the model needs {need} or (n, 160, 1){hint}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size and not np.isfinite(x).all():
        bad = int((~np.isfinite(x).all(axis=1)).sum())
        raise DataError(f"{bad} of {len(x)} snippets contain NaN or inf values; drop or repair them first")
    return x


def to_member_input(snippets) -> np.ndarray:
    """Build the member input from snippets: (n, 160) in pA -> (n, 160, 2, 1) float32.

    Parameters
    ----------
    snippets : array-like or Snippets
        (n, 160) or (n, 160, 1) currents in pA (trigger at index 40, 40 kHz), or a ``Snippets`` object.

    Returns
    -------
    numpy.ndarray
        (n, 160, 2, 1) float32: column 0 the sample time in seconds from the window start
        (:data:`TIME_COLUMN`, ``arange(160) / 40000``), column 1 the current in pA.

    Notes
    -----
    The authors fed each spike as a 160 x 2 CSV table whose header was discarded; the columns are not
    named anywhere. We take them to be **(time, current)**, as a Clampfit/pCLAMP export gives them (see
    ``docs/model-folder.md``). ``LayerNormalization(axis=[1])`` z-scores each column over its 160 samples,
    so a time offset does not matter, but the *scale* of the time column does: the layer adds
    ``epsilon = 1e-3`` to the variance, and the variance of a ramp in seconds (1.3e-6 s^2) is far below it,
    so the normalised ramp spans +-0.063; in milliseconds or sample numbers it would span +-1.72 and the
    network would see a different input. Seconds is the unit of a Clampfit export and of the reference
    predictions made with TensorFlow 2.15 (``../shared/models/keras2-tf2.15``): never build the time
    column yourself.
    """
    x = _as_snippets(snippets)
    out = np.empty((x.shape[0], SNIPPET_LENGTH, 2, 1), dtype=np.float32)
    out[:, :, 0, 0] = TIME_COLUMN
    out[:, :, 1, 0] = x
    return out
