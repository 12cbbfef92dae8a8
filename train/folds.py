"""Groups of photos that must stay on one side of a split: bursts and near-duplicates.

Burst shots (`1587034022066-3.jpg`, `1587034022066-4.jpg`) are nearly the same picture; a
split that puts one in training and its neighbour in validation measures memory, not
recognition (issue 12: 0.979 with random folds, 0.903 with bursts kept together).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Two photos whose average-pooled features are at least this similar are one group (near-duplicates).
NEAR_DUPLICATE = 0.92
BURST = re.compile(r"^(.+)-\d+$")


def burst_of(path: Path) -> str:
    """The burst a photo belongs to: its name without the `-N` suffix (or the whole name)."""
    m = BURST.match(Path(path).stem)
    return f"{Path(path).parent.name}/{m.group(1) if m else Path(path).stem}"


def groups(paths, vectors: np.ndarray, labels=None, near: float = NEAR_DUPLICATE) -> np.ndarray:
    """Group id per photo: same burst or (transitively) feature cosine >= `near` within a class share a group."""
    parent = list(range(len(paths)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        parent[find(i)] = find(j)

    first = {}
    for i, p in enumerate(paths):
        union(i, first.setdefault(burst_of(p), i))
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    if labels is not None:
        labels = np.asarray(labels)
        sim[labels[:, None] != labels[None, :]] = -1.0
    for i, j in zip(*np.nonzero(np.triu(sim, 1) >= near)):
        union(int(i), int(j))
    roots = [find(i) for i in range(len(paths))]
    return np.unique(roots, return_inverse=True)[1]


def grouped_folds(group_ids: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id per photo: whole groups dealt to folds, largest first, each class spread evenly."""
    rng = np.random.default_rng(seed)
    fold = np.full(len(group_ids), -1)
    counts = np.zeros((k, labels.max() + 1))
    ids = np.unique(group_ids)
    rng.shuffle(ids)
    sizes = {g: np.sum(group_ids == g) for g in ids}
    for g in sorted(ids, key=lambda g: -sizes[g]):  # stable: ties keep the shuffled order
        members = group_ids == g
        label_counts = np.bincount(labels[members], minlength=counts.shape[1])
        cls = int(label_counts.argmax())
        f = int(np.lexsort((rng.random(k), counts.sum(1), counts[:, cls]))[0])
        fold[members] = f
        counts[f] += label_counts
    return fold


