"""Grad-CAM class-activation maps of the members over the 160 samples of a snippet, and a plot of one
snippet over its map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..constants import NBEFORE, SAMPLING_FREQUENCY, SNIPPET_LENGTH
from ..errors import DataError, ModelError, SnippetError
from ._backend import _keras, _tf
from .architecture import _as_snippets, _plain_layers, to_member_input
from .ensemble import Ensemble

__all__ = ["gradcam", "plot_gradcam"]


def _sample_centres(member, layer) -> np.ndarray | None:
    """Input-sample centre of each output position of ``layer`` along time (None if it cannot be traced)."""
    keras = _keras()
    L = keras.layers
    a, b = 1.0, 0.0  # sample = a * h + b
    length = SNIPPET_LENGTH
    for lay in _plain_layers(member):
        if isinstance(lay, (L.Conv2D, L.MaxPooling2D, L.AveragePooling2D)):
            if isinstance(lay, L.Conv2D):
                k, s, d = int(lay.kernel_size[0]), int(lay.strides[0]), int(lay.dilation_rate[0])
            else:
                k, s, d = int(lay.pool_size[0]), int(lay.strides[0]), 1
            eff = (k - 1) * d + 1
            if lay.padding == "valid":
                off = (eff - 1) / 2.0
                length = (length - eff) // s + 1
            else:
                out_len = -(-length // s)
                pad_total = max((out_len - 1) * s + eff - length, 0)
                off = (eff - 1) / 2.0 - pad_total // 2
                length = out_len
            a, b = a * s, a * off + b
        elif isinstance(lay, (L.Flatten, L.Dense, L.GlobalMaxPooling2D, L.GlobalAveragePooling2D, L.Reshape)):
            return None
        if lay is layer:
            return a * np.arange(length) + b
    return None


def _member_gradcam(member, x4: np.ndarray, class_index: int, layer_names: list[str]) -> dict:
    tf = _tf()
    keras = _keras()
    layers = [member.get_layer(name) for name in layer_names]
    xt = tf.convert_to_tensor(x4)
    if isinstance(member, keras.Sequential):
        # Layer by layer: the symbolic outputs of a *loaded* Sequential's layers belong to a graph that is
        # not the one its .outputs come from, so a sub-model built from them would not be connected.
        with tf.GradientTape() as tape:
            h, found = xt, {}
            for layer in _plain_layers(member):
                h = layer(h, training=False)
                if layer in layers:
                    found[id(layer)] = h
            acts = [found[id(layer)] for layer in layers]
            score = tf.reduce_sum(h[:, class_index])
    else:
        sub = keras.Model(member.inputs, [layer.output for layer in layers] + [member.outputs[0]])
        with tf.GradientTape() as tape:
            outs = sub(xt, training=False)
            acts, pred = outs[:-1], outs[-1]
            score = tf.reduce_sum(pred[:, class_index])
    grads = tape.gradient(score, acts)
    result = {}
    for layer, act, grad in zip(layers, acts, grads):
        act, grad = np.asarray(act), np.asarray(grad)
        if act.ndim != 4:
            raise ModelError(f"layer {layer.name!r} is not a 2-D feature map; Grad-CAM needs a convolution layer")
        weights = grad.mean(axis=(1, 2), keepdims=True)  # (n, 1, 1, C): standard Grad-CAM channel weights
        cam_full = np.maximum((weights * act).sum(axis=-1), 0.0)  # (n, H, W)
        col = 1 if cam_full.shape[2] >= 2 else 0  # the current column
        cam = cam_full[:, :, col]
        centres = _sample_centres(member, layer)
        if centres is None or len(centres) != cam.shape[1]:
            centres = np.linspace(0, SNIPPET_LENGTH - 1, cam.shape[1])
        grid = np.arange(SNIPPET_LENGTH, dtype=np.float64)
        up = (
            np.stack([np.interp(grid, centres, row) for row in cam])
            if cam.shape[1] > 1
            else np.repeat(cam, SNIPPET_LENGTH, axis=1)
        )
        top = up.max(axis=1, keepdims=True)
        result[layer.name] = np.where(top > 0, up / np.where(top > 0, top, 1.0), 0.0)
    return result


def gradcam(ensemble_or_member, snippets, *, class_index: int = 0, layers: Sequence[str] | None = None) -> dict:
    """Grad-CAM class-activation maps over the 160 samples, per convolution layer.

    Parameters
    ----------
    ensemble_or_member : Ensemble or keras.Model
        An ensemble (its members' maps are averaged) or one member.
    snippets : array-like
        (n, 160) currents in pA.
    class_index : int, default: 0
        The output unit explained: 0 serotonergic, 1 non-serotonergic.
    layers : sequence of str or str or None, default: None
        Names of convolution layers (default: every Conv2D, i.e. ``conv2d`` and ``conv2d_1``).

    Returns
    -------
    dict
        ``{layer name: (n, 160) float array in [0, 1]}`` (for an ensemble, keyed by the first member's
        layer names; the i-th convolution of every member is mapped and the maps are averaged).

    Notes
    -----
    For each layer: channel weights = gradient of output unit ``class_index`` averaged over the feature map,
    map = relu(weighted sum of channels) on the current column, placed at the centre of each position's
    receptive field and linearly interpolated to the 160 samples, then scaled to max 1 per snippet (all
    zeros when nothing supports the class).
    """
    keras = _keras()
    if class_index not in (0, 1):
        raise ModelError(f"class_index must be 0 (serotonergic) or 1 (non-serotonergic), got {class_index!r}")
    x4 = to_member_input(snippets)
    members = ensemble_or_member.members if isinstance(ensemble_or_member, Ensemble) else [ensemble_or_member]
    convs = [[lay.name for lay in _plain_layers(m) if isinstance(lay, keras.layers.Conv2D)] for m in members]
    if not convs[0]:
        raise ModelError("the model has no convolution layer for Grad-CAM")
    if layers is None:
        positions = list(range(len(convs[0])))
    else:
        layers = [layers] if isinstance(layers, str) else list(layers)
        positions = []
        for name in layers:
            if name not in convs[0]:
                raise ModelError(f"no convolution layer named {name!r}; the layers are {convs[0]}")
            positions.append(convs[0].index(name))
    keys = [convs[0][i] for i in positions]
    total = {key: np.zeros((x4.shape[0], SNIPPET_LENGTH)) for key in keys}
    if x4.shape[0] == 0:
        return total
    for m, names in zip(members, convs):
        if len(names) < len(convs[0]):
            raise ModelError(f"member {m.name!r} has fewer convolution layers than the first member")
        maps = _member_gradcam(m, x4, class_index, [names[i] for i in positions])
        for key, i in zip(keys, positions):
            total[key] += maps[names[i]]
    return {key: v / len(members) for key, v in total.items()}


def plot_gradcam(
    snippet, cam, ax=None, *, layer: str | None = None, cmap: str = "jet", alpha: float = 0.45, title: str | None = None
):
    """Draw a snippet (pA against ms from the trigger) over its Grad-CAM map.

    Parameters
    ----------
    snippet : array-like
        One snippet, (160,) or (1, 160), in pA.
    cam : array-like or dict
        Its (160,) map, or the dict :func:`gradcam` returned for this one snippet (``(1, 160)`` arrays).
    ax : matplotlib.axes.Axes or None, default: None
        Where to draw (default: a new figure).
    layer : str or None, default: None
        Which layer of a ``cam`` dict (default: the deepest).
    cmap : str, default: "jet"
        Colour map of the activation.
    alpha : float, default: 0.45
        Opacity of the activation.
    title : str or None, default: None
        Axes title (default: "Grad-CAM (<layer>)").

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    import matplotlib.pyplot as plt

    x = _as_snippets(np.asarray(snippet).reshape(1, -1) if np.ndim(snippet) == 1 else snippet)
    if x.shape[0] != 1:
        raise SnippetError(f"plot_gradcam draws one snippet; got {x.shape[0]}")
    name = None
    if isinstance(cam, Mapping):
        if not cam:
            raise DataError("cam is an empty dict")
        name = layer or list(cam)[-1]
        if name not in cam:
            raise DataError(f"layer {name!r} not in cam (have {list(cam)})")
        cam = cam[name]
    c = np.asarray(cam, dtype=np.float64).reshape(-1)
    if c.shape[0] != SNIPPET_LENGTH:
        raise DataError(f"cam has {c.shape[0]} values; expected 160 (one per sample)")
    if ax is None:
        _fig, ax = plt.subplots(figsize=(6, 3))
    t = (np.arange(SNIPPET_LENGTH) - NBEFORE) / SAMPLING_FREQUENCY * 1000.0
    y = x[0]
    pad = 0.05 * (float(y.max() - y.min()) or 1.0)
    lo, hi = float(y.min()) - pad, float(y.max()) + pad
    dt = t[1] - t[0]
    im = ax.imshow(
        c[None, :],
        extent=(t[0] - dt / 2, t[-1] + dt / 2, lo, hi),
        aspect="auto",
        cmap=cmap,
        alpha=alpha,
        vmin=0.0,
        vmax=max(1.0, float(c.max())),
        origin="lower",
    )
    ax.plot(t, y, color="black", lw=1.2)
    ax.set_xlim(t[0] - dt / 2, t[-1] + dt / 2)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("time from trigger (ms)")
    ax.set_ylabel("current (pA)")
    ax.set_title(title if title is not None else f"Grad-CAM{f' ({name})' if name else ''}")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="class activation")
    return ax
