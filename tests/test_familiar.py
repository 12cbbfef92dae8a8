"""The familiarity gate (train/familiar.py): unfamiliar crops read "unknown", the winner never changes."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ROOT, SHARED_DATA

BUNDLED = ROOT / "models" / "knyang"


def _no_cat_frames() -> np.ndarray:
    """Crops of scenes without a cat: a portrait photo (Matplotlib's sample), flat grey, noise, stripes."""
    import matplotlib.cbook
    from PIL import Image

    photo = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
                       .convert("RGB").resize((160, 200)))
    rng = np.random.default_rng(0)
    frames = [photo[y:y + 160] for y in (0, 20, 40)]
    frames += [np.full((160, 160, 3), 128, np.uint8), rng.integers(0, 256, (160, 160, 3), dtype=np.uint8),
               np.tile(((np.arange(160) // 10) % 2 * 255).astype(np.uint8)[None, :, None], (160, 1, 3))]
    return np.stack(frames)


def _colour_model():
    """Pooled features = the mean colour; Alpha is red, Beta green (answers known by construction)."""
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(inp)
    x = keras.layers.Activation("linear", name="features")(x)
    dense = keras.layers.Dense(2, activation="softmax", name="probs")
    out = dense(x)
    dense.set_weights([np.array([[0.02, -0.02], [-0.02, 0.02], [0.0, 0.0]], np.float32), np.zeros(2, np.float32)])
    return keras.Model(inp, out)


def _fields(*colours) -> np.ndarray:
    return np.stack([np.full((8, 8, 3), c, np.float32) for c in colours])


@pytest.mark.slow  # Keras
def test_gate_keeps_the_winner_and_flattens_what_looks_like_no_reference():
    from train import familiar
    from train.model import infer

    model = _colour_model()
    red, green = _fields((255, 0, 0)), _fields((0, 255, 0))
    # Validation answers: reddish and greenish, 0.86 to 0.97 similar to the nearest reference.
    selection = _fields((255, 150, 0), (255, 60, 30), (90, 255, 40), (0, 255, 130))
    feats = selection.mean(axis=(1, 2))  # the pooled features
    gate = familiar.fit_gate(model, [red.mean(axis=(1, 2)), green.mean(axis=(1, 2))], feats)
    sims = familiar.nearest(feats, gate.refs)
    assert gate.cut == round(float(np.quantile(sims, 1 - familiar.KEEP)), 4) and 0.85 < gate.cut < 0.87
    gated = familiar.gated(model, gate)

    magenta = _fields((255, 0, 255))  # 0.71 similar to red: unlike any reference
    x = np.concatenate([red, green, selection, magenta])
    raw, out = infer(model, x), infer(gated, x)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(out.argmax(axis=1), raw.argmax(axis=1))
    # The numpy twin (the retrain chooses its threshold with it) gives what the network gives.
    np.testing.assert_allclose(gate.shrink(raw, x.mean(axis=(1, 2))), out, atol=1e-5)
    # A reference is familiar: its probabilities pass (nearly) unchanged ...
    np.testing.assert_allclose(out[:2], raw[:2], atol=0.01)
    assert out[0, 0] > 0.99
    # ... while magenta, which the head calls Alpha at 0.9999, comes out close to uniform.
    assert raw[6, 0] > 0.999
    np.testing.assert_allclose(out[6], [0.5, 0.5], atol=0.01)


@pytest.mark.skipif(not (BUNDLED / "model.tflite").is_file(), reason="bundled model not built")
def test_bundled_model_says_unknown_for_scenes_without_a_cat():
    from knyang_cam import model_dir
    from knyang_cam.classify import load_classifier

    info = model_dir.read(BUNDLED)
    assert info.familiarity["references"] > 0
    probs = load_classifier(info, "litert", 1).predict(_no_cat_frames())
    assert (probs.max(axis=1) < info.unknown_threshold).all(), probs.max(axis=1)


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared dataset not found at {SHARED_DATA}")
@pytest.mark.skipif(not (BUNDLED / "model.tflite").is_file(), reason="bundled model not built")
def test_bundled_model_still_names_the_validation_cats():
    from knyang_cam import model_dir
    from knyang_cam.classify import load_classifier
    from train import data

    info = model_dir.read(BUNDLED)
    ds = data.find_images(SHARED_DATA)
    val = data.decode_split(ds.validation, ds.classes, info.input_size[0])
    probs = load_classifier(info, "litert", 1).predict(val.pixels)
    named = (probs.argmax(axis=1) == val.labels) & (probs.max(axis=1) >= info.unknown_threshold)
    assert named.mean() >= 0.9, named.mean()
