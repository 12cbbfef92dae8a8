"""The open-set gate: how much a crop looks like one of my cats rather than another animal,
folded into the probabilities so that the model-directory contract (pixels -> softmax [N, C]) holds.

A softmax head names one of the known cats for anything. Distance in feature space tells
better (issue 12: area under the ROC 0.70 for the top probability, 0.85 for the nearest
neighbour's cosine): the score of a crop is

    s = cos(nearest of my cats' references) - other_animal_weight * cos(nearest other animal)

on the average-pooled part of its (mirror-averaged) features, "nearest" being the mean of the
recipe.NEIGHBOURS most similar rows. The references are crops of
the training photos; the other animals are a bank of other cats and dogs (train/negatives.npz,
Oxford-IIIT Pet photos, for the bundled backbone) plus whatever the user saved as "not one of
my cats" (<dataset>/not_mine/). A look-alike that no photo of my cats can tell apart gets
closer to its own saved crops than to my cats once a few are saved.

However unlike other animals a crop is, its similarity to my cats must also reach a floor
(a scene with no animal is as far from either). The gate
g = sigmoid(min(s - cut, similarity - floor) / SOFTNESS) shrinks the probabilities towards uniform,
g * p + (1 - g) / C: still a probability vector with the same winner, whose top falls under
the unknown threshold (recipe.unknown_threshold) exactly when s is below the cut. Each class has
its own cut, the one the class the head names is held to (recipe.choose_cuts); it keeps
`unknown_keep` of that class's crops, each scored against the (merged) references of the
other bursts only (recipe.held_out_scores): a cross-validated choice, not one on Validation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import recipe
from .model import MIRROR_MEAN_NAME

SIMILARITY_NAME, OTHERS_NAME = "my_cats", "other_animals"


@dataclass(frozen=True)
class Gate:
    """A fitted open-set gate (module docstring): reference and other-animal unit rows, their weight, cut and floor."""

    refs: np.ndarray  # [R, A] unit rows: my cats' references (gate part of the features)
    others: np.ndarray  # [M, A] unit rows: other animals (may be empty)
    weight: float  # other_animal_weight
    cut: float | np.ndarray  # one per class (recipe.choose_cuts), or one for all
    floor: float  # the least similarity to my cats, whatever the other animals (recipe.FLOOR_KEEP)
    how: str

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """The open-set score of pooled feature vectors (see the module docstring)."""
        return recipe.open_set_score(vectors, self.refs, self.others, self.weight)

    def cut_for(self, classes: np.ndarray) -> np.ndarray | float:
        """The cut each crop is held to: that of the class the head names (`classes`), or the one cut."""
        cut = np.asarray(self.cut, np.float32)
        return cut[np.asarray(classes)] if cut.ndim else float(cut)

    def margin(self, vectors: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Above 0: one of my cats; below: unknown (recipe.margin); `classes`: what the head names."""
        return recipe.margin(vectors, self.refs, self.others, self.weight, self.cut_for(classes), self.floor)

    def shrink(self, probs: np.ndarray, vectors: np.ndarray, n_classes: int | None = None) -> np.ndarray:
        """What the gated model outputs, from the head's probabilities and the pooled vectors (recipe.shrink:
        a head of `n_classes` + 1 columns has other animals last)."""
        return recipe.shrink(probs, self.margin(vectors, np.argmax(probs[:, :n_classes], axis=1)), n_classes)

    def to_json(self) -> dict:
        """The `familiarity` entry of model.json."""
        return {"references": int(len(self.refs)), "other_animals": int(len(self.others)),
                "other_animal_weight": self.weight,
                "cut": [round(float(c), 4) for c in self.cut] if np.ndim(self.cut) else round(float(self.cut), 4),
                "floor": self.floor,
                "neighbours": recipe.NEIGHBOURS,
                "softness": recipe.SOFTNESS,
                "how": self.how}


def fit_gate(ref_vectors: np.ndarray, ref_groups: np.ndarray, others: np.ndarray, keep: float,
             weight: float, merge: float, ref_labels: np.ndarray | None = None, n_classes: int = 0) -> Gate:
    """References from pooled training crops (grouped by burst); the cut that `keep` of them reach held out:
    one per class when their `ref_labels` are given (recipe.choose_cuts), else one for all."""
    others = recipe.spread(others, merge) if len(others) else np.zeros((0, ref_vectors.shape[1] // 2), np.float32)
    # Every crop is held out against the references the model keeps (merged), as a new photo meets them:
    # against all of them, near-duplicates would fill a crop's nearest few and flatter the cut.
    kept = recipe.spread_index(recipe.gate_part(ref_vectors), merge)
    known = recipe.held_out_scores(ref_vectors, ref_groups, ref_vectors[kept], ref_groups[kept], others, 0.0)
    held = known - weight * recipe.nearest(ref_vectors, others) if weight and len(others) else known
    cut = recipe.choose_cut(held, keep) if ref_labels is None else \
        recipe.choose_cuts(held, np.asarray(ref_labels), n_classes, keep)
    floor = recipe.choose_cut(known, recipe.FLOOR_KEEP)
    refs = recipe.unit(recipe.gate_part(ref_vectors[kept]))
    how = (f"s = mean cosine to the nearest {recipe.NEIGHBOURS} of {len(refs)} references (training crops, those "
           f"at least {merge} similar merged) - {weight} x the same to {len(others)} other animals (other cats "
           f"and dogs, not_mine crops), on the average-pooled features; cut: the score that {keep:.0%} of "
           f"the {len(held)} training crops{' of the class the head names' if ref_labels is not None else ''} "
           f"reach against the (merged) references of the other bursts (leave one burst out); floor: the similarity "
           f"to my cats alone that {recipe.FLOOR_KEEP:.1%} of them reach; "
           f"probabilities pulled towards uniform by sigmoid(min(s - cut, similarity - floor) / "
           f"{recipe.SOFTNESS})")
    return Gate(refs, others.astype(np.float32), weight, cut, floor, how)


def gated(model, gate: Gate, n_classes: int | None = None):
    """`model` (pixels -> softmax, with a MIRROR_MEAN_NAME layer inside) with the gate on its output; a head of
    `n_classes` + 1 columns has other animals last (recipe.shrink), and the output has `n_classes`."""
    import keras
    from keras import ops

    mean = model.get_layer(MIRROR_MEAN_NAME).output
    part = keras.layers.UnitNormalization(name="unit_avg")(mean[:, :mean.shape[-1] // 2])

    def nearest(rows, name):
        layer = keras.layers.Dense(len(rows), use_bias=False, trainable=False, name=name)
        top = ops.top_k(layer(part), recipe.neighbours(len(rows)), sorted=False)[0]
        layer.set_weights([rows.T])
        return ops.mean(top, axis=-1, keepdims=True)

    known = nearest(gate.refs, SIMILARITY_NAME)
    score = known - gate.weight * nearest(gate.others, OTHERS_NAME) if len(gate.others) and gate.weight else known
    probs = model.outputs[0]
    g_other = 1.0
    if n_classes is not None and probs.shape[-1] > n_classes:
        g_other = 1.0 - probs[:, n_classes:]
        probs = probs[:, :n_classes] / ops.maximum(ops.sum(probs[:, :n_classes], axis=-1, keepdims=True), 1e-12)
    cut = np.asarray(gate.cut, np.float32)
    if cut.ndim:  # the cut of the class the head names (by comparison: one_hot converts to a flex op)
        top = ops.cast(ops.equal(probs, ops.max(probs, axis=-1, keepdims=True)), "float32")
        cut = ops.sum(top * cut, axis=-1, keepdims=True) / ops.sum(top, axis=-1, keepdims=True)
    g = ops.sigmoid(ops.minimum(score - cut, known - gate.floor) / recipe.SOFTNESS) * g_other
    return keras.Model(model.inputs, g * probs + (1.0 - g) / probs.shape[-1], name=model.name)


def refs_of(model) -> np.ndarray:
    """My cats' reference rows inside a gated model."""
    return np.asarray(model.get_layer(SIMILARITY_NAME).get_weights()[0].T, np.float32)


def others_of(model) -> np.ndarray:
    """The other-animal rows inside a gated model (empty when it has none)."""
    try:
        return np.asarray(model.get_layer(OTHERS_NAME).get_weights()[0].T, np.float32)
    except ValueError:
        return np.zeros((0, model.get_layer(MIRROR_MEAN_NAME).output.shape[-1] // 2), np.float32)
