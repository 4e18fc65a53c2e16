"""The linear probe of LP-FT (Kumar et al. 2022): the classifier's head trained alone before fine-tuning."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fer_age.modeling.models import HEAD_PREFIX

if TYPE_CHECKING:
    import keras


def head_layers(classifier: keras.Model) -> list[keras.Layer]:
    """The layers of ``classifier``'s head (``m1``, ``m2`` or the mini-Xception's own): what a linear probe trains."""
    return [layer for layer in classifier.layers if layer.name.startswith(HEAD_PREFIX)]


@contextmanager
def head_only(classifier: keras.Model) -> Iterator[None]:
    """Within the block, only ``classifier``'s head is trainable; after it, every layer's flag is as before.
    Recompile the model being fitted on entering and on leaving (Keras reads the flags when it compiles)."""
    head = {id(layer) for layer in head_layers(classifier)}
    if not head:
        raise ValueError(f"{classifier.name} has no layer named {HEAD_PREFIX}*: no head to probe")
    flags = {id(layer): layer.trainable for layer in classifier.layers}
    for layer in classifier.layers:
        layer.trainable = flags[id(layer)] and id(layer) in head
    try:
        yield
    finally:
        for layer in classifier.layers:
            layer.trainable = flags[id(layer)]
