"""Familiarity: how much a crop looks like the training photos, folded into the probabilities.

A softmax head names one of the known cats for anything: a circuit board read
"Hwamok" at 0.99 with the five-cat model. What does tell a scene without a cat
(or with a cat never seen) from the known cats is distance: the cosine similarity
of a crop's average-pooled backbone features to the nearest reference, the centre
squares and four corner crops of the training photos. With it, every crop of
bench/unknown_threshold.py's pictures without a cat reads "unknown", and leaving
one cat out, 19% of the stranger's photos and crops do (8% with the threshold
alone), for 0.8 points fewer known cats named.

The gate g = sigmoid((s - cut) / SOFTNESS) shrinks the probabilities towards
uniform, g * p + (1 - g) / C. The output is still a probability vector [N, C]
with the same winner (the model-directory contract holds, and every reader of
the model gets the same answer); only its top probability falls, under the
unknown threshold when the crop looks like no training photo.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .model import AVG_NAME

# The cut keeps this share of the validation answers (centre squares and crops) familiar.
KEEP = 0.995
# From g = 0.5 at the cut to g = 0.95 at 0.09 above it: a soft edge, not a cliff.
SOFTNESS = 0.03
# A reference at least this similar to one already kept adds little to a nearest-neighbour
# score: on the five-cat set, merging at 0.85 keeps 788 of 1840 (the gate's cost and size less
# than half), and the clip, no-cat and stranger figures stayed as they were down to ~500.
MERGE = 0.85


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest(vectors: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pooled vector's average part to its nearest reference."""
    return (_unit(np.asarray(vectors, np.float32)[:, :refs.shape[1]]) @ refs.T).max(axis=1)


@dataclass(frozen=True)
class Gate:
    refs: np.ndarray  # [R, avg features] unit rows
    cut: float

    def shrink(self, probs: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """What the gated model outputs, from the head's probabilities and the pooled vectors."""
        g = 1.0 / (1.0 + np.exp(-(nearest(vectors, self.refs) - self.cut) / SOFTNESS))
        return g[:, None] * probs + (1.0 - g[:, None]) / probs.shape[1]

    def to_json(self) -> dict:
        """The `familiarity` entry of model.json."""
        return {"references": int(len(self.refs)), "cut": self.cut, "softness": SOFTNESS, "keep": KEEP,
                "merge": MERGE,
                "how": "probabilities shrunk towards uniform by sigmoid((s - cut) / softness), s the cosine "
                       "similarity of the crop's average-pooled features to the nearest training photo "
                       "(centre square or corner crop; of those at least `merge` similar, one is kept); "
                       "the cut keeps `keep` of the validation answers (centre squares and crops)"}


def _spread(refs: np.ndarray) -> np.ndarray:
    """Greedy, in order: a reference is kept when no kept one is MERGE or more similar to it."""
    kept, n = np.empty_like(refs), 0
    for r in refs:
        if n == 0 or (kept[:n] @ r).max() < MERGE:
            kept[n], n = r, n + 1
    return kept[:n].copy()


def fit_gate(model, reference_vectors: Sequence[np.ndarray], selection_vectors: np.ndarray) -> Gate:
    """References from pooled training vectors; the cut that KEEP of the validation answers reach."""
    avg_dim = model.get_layer(AVG_NAME).output.shape[-1]
    avg = np.concatenate([np.asarray(v, np.float32)[:, :avg_dim] for v in reference_vectors])
    refs = _spread(_unit(avg))
    cut = round(float(np.quantile(nearest(selection_vectors, refs), 1 - KEEP)), 4)
    return Gate(refs, cut)


def gated(model, gate: Gate):
    """`model` (pixels -> softmax, with an AVG_NAME layer inside) with the familiarity gate on its output."""
    import keras
    from keras import ops

    avg = model.get_layer(AVG_NAME).output
    similarity = keras.layers.Dense(len(gate.refs), use_bias=False, trainable=False, name="similarity")
    s = ops.max(similarity(keras.layers.UnitNormalization(name="unit_avg")(avg)), axis=-1, keepdims=True)
    similarity.set_weights([gate.refs.T])
    g = ops.sigmoid((s - gate.cut) / SOFTNESS)
    probs = model.outputs[0]
    return keras.Model(model.inputs, g * probs + (1.0 - g) / probs.shape[-1], name=model.name)
