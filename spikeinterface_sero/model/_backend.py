"""Lazy access to TensorFlow and Keras: imported by the functions that need them, never at package import."""

from __future__ import annotations

from ..errors import ModelError


def _tf():
    import tensorflow as tf

    return tf


def _keras():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ModelError(
            f"the serotonergic models need the TensorFlow Keras backend, but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow before importing keras"
        )
    return keras
