"""Editing an exported model.tflite (train/tflite_edit.py): the base cut out of it, the head and gate patched
in place, each checked against the Keras network it must equal; the live retrain takes both paths."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clips import write_class
from knyang_cam import model_dir
from knyang_cam.config import TrainConfig

pytestmark = pytest.mark.slow  # Keras models and their conversion

SIZE, CLASSES = 48, ("Alpha", "Beta", "Gamma")


def gated_network(refs: int = 9, others: int = 12, seed: int = 0):
    """A small network shaped as train builds it (extractor, mirror mean, head, gate), random weights."""
    import keras

    from train import familiar, recipe
    from train.model import AVG_NAME, EXTRACTOR_NAME, FEATURES_NAME, classifier, head_layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    pooled = keras.layers.Concatenate(name=FEATURES_NAME)([keras.layers.GlobalAveragePooling2D(name=AVG_NAME)(x),
                                                          keras.layers.GlobalMaxPooling2D()(x)])
    extractor = keras.Model(inp, pooled, name=EXTRACTOR_NAME)
    drop, dense = head_layers(len(CLASSES), 0.0)
    net = classifier(extractor, drop, dense)
    rng = np.random.default_rng(seed)
    kernel, bias = dense.get_weights()  # a zero bias would be dropped by the converter: a trained one is not zero
    dense.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in (kernel, bias)])
    gate = familiar.Gate(recipe.unit(rng.random((refs, 8))), recipe.unit(rng.random((others, 8))), 1.0,
                         rng.uniform(-0.05, 0.05, len(CLASSES)).round(4).astype(np.float32),  # a cut per class
                         round(float(rng.uniform(0.5, 0.9)), 4), "test")
    return familiar.gated(net, gate), extractor, dense, gate


def params(dense, gate):
    from train.tflite_edit import HeadParams

    kernel, bias = dense.get_weights()
    return HeadParams(kernel, bias, gate.refs, gate.others, gate.cut, gate.floor)


def crops(n: int = 6, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.uniform(0, 255, (n, 6, 6, 3))
    return np.kron(smooth, np.ones((1, SIZE // 6, SIZE // 6, 1))).astype(np.float32)


def gated_model_dir(path: Path):
    """`gated_network()` written as a model directory, its gate in model.json as training writes it."""
    from knyang_cam.model_dir import ModelInfo
    from train.export import write_model_dir

    model, _, _, gate = gated_network()
    info = ModelInfo(path=path, classes=CLASSES, input_size=(SIZE, SIZE), unknown_threshold=0.6,
                     backbone={"name": "tiny-test-net", "alpha": 1.0, "weights": "random"},
                     familiarity=gate.to_json())
    write_model_dir(model, info, path)
    return info


@pytest.fixture(scope="module")
def exported():
    """The network converted and its gate's rows made int8, as `python -m train` writes model.tflite."""
    from train import tflite_edit
    from train.export import tflite_bytes

    model, extractor, dense, gate = gated_network()
    return model, extractor, dense, gate, tflite_edit.quantize_gate(tflite_bytes(model), gate.refs, gate.others)


def gate_rows(data: bytes) -> list:
    """The weight tensors of the gate's matrix products (those the top-k takes) in the .tflite `data`."""
    from train import tflite_edit

    model = tflite_edit.read(data)
    graph = model.subgraphs[0]
    made_by = {int(o): op for op in graph.operators for o in op.outputs}
    return [graph.tensors[made_by[int(op.inputs[0])].inputs[1]] for op in graph.operators
            if tflite_edit._kind(model, op) == tflite_edit._OP.TOPK_V2]


def stored_model(net, gate):
    """The Keras network `net` (ungated) with `gate`'s rows as the int8 .tflite stores them."""
    from train import familiar, tflite_edit

    return familiar.gated(net, replace(gate, refs=tflite_edit.stored(gate.refs),
                                       others=tflite_edit.stored(gate.others)))


def test_the_gate_rows_are_int8_with_a_scale_per_row(exported):
    """At one crop a frame LiteRT reads every gate row per crop: int8 reads a quarter of float32's bytes.
    The file computes what the Keras network does with the rows rounded so, up to the features' own
    rounding to int8 on the fly."""
    from ai_edge_litert import schema_py_generated as fb

    from train import tflite_edit
    from train.model import classifier, head_layers

    model, extractor, dense, gate, data = exported
    rows = gate_rows(data)
    assert [(t.type, len(t.quantization.scale)) for t in rows] == \
        [(fb.TensorType.INT8, len(gate.refs)), (fb.TensorType.INT8, len(gate.others))]
    x = crops(8)
    got = tflite_edit.run(data, x)
    drop, _ = head_layers(len(CLASSES), 0.0)
    rounded = stored_model(classifier(extractor, drop, dense), gate).predict(x, verbose=0)
    np.testing.assert_allclose(got, rounded, atol=5e-3)


def test_the_cut_out_base_gives_the_keras_features(exported):
    from train import tflite_edit

    model, extractor, _, _, data = exported
    cut = tflite_edit.feature_extractor(data, extractor.output_shape[-1])
    x = crops()
    np.testing.assert_allclose(tflite_edit.run(cut, x), extractor.predict(x, verbose=0), atol=1e-4)
    assert len(cut) < len(data), "the head's and the gate's weights are dropped"


def test_full_training_runs_its_backbone_on_litert_converted_only_when_needed(exported, monkeypatch):
    """features.on_litert (python -m train's crops): what TensorFlow gives, in batches with progress; a warm
    cache, which never calls it, never pays the conversion."""
    from train import export, features
    from train.model import infer

    _, extractor, _, _, _ = exported
    converted, real = [], export.tflite_bytes
    monkeypatch.setattr(export, "tflite_bytes", lambda m: converted.append(m) or real(m))
    embed = features.on_litert(extractor, batch_size=4)
    assert converted == []
    x, seen = crops(10), []
    got = embed(x, lambda done, total: seen.append((done, total)))
    np.testing.assert_allclose(got, infer(extractor, x), atol=1e-4)
    assert seen == [(4, 10), (8, 10), (10, 10)]
    np.testing.assert_allclose(embed(x[:3]), got[:3], atol=1e-6)
    assert converted == [extractor], "converted once, on the first call"


def test_a_patched_head_and_gate_equal_a_new_conversion(exported):
    """New kernel, bias, cut and floor, more references and fewer other animals: the patched file (int8
    rows, as `python -m train` writes it) computes what the Keras network with those values computes."""
    import keras

    from train import familiar, recipe, tflite_edit
    from train.model import classifier, head_layers

    model, extractor, dense, gate, data = exported
    rng = np.random.default_rng(5)
    kernel, bias = dense.get_weights()
    new_gate = familiar.Gate(recipe.unit(rng.random((14, 8))), gate.others[:recipe.NEIGHBOURS], 1.0, gate.cut + 0.02,
                             gate.floor - 0.1, "test")
    drop, new_dense = head_layers(len(CLASSES), 0.0)
    new_dense.build((None, kernel.shape[0]))
    new_dense.set_weights([rng.normal(size=kernel.shape).astype(np.float32), bias + 0.3])
    new_model = stored_model(classifier(extractor, drop, new_dense), new_gate)
    patched = tflite_edit.patch_head(data, params(dense, gate), params(new_dense, new_gate))
    assert [len(t.quantization.scale) for t in gate_rows(patched)] == [14, recipe.NEIGHBOURS]
    x = crops(8)
    expected = keras.Model(new_model.inputs, new_model.outputs).predict(x, verbose=0)
    got = tflite_edit.run(patched, x)
    # The features are rounded to int8 on the fly too: 8 of them here round coarser than the model's 1280.
    np.testing.assert_allclose(got, expected, atol=5e-3)
    assert np.abs(got - tflite_edit.run(data, x)).max() > 0.01, "the patch changed what the network says"


def test_a_patch_refuses_what_it_cannot_do_safely(exported):
    from train import tflite_edit

    _, _, dense, gate, data = exported
    old = params(dense, gate)
    grown = tflite_edit.HeadParams(np.zeros((old.kernel.shape[0], 4), np.float32), np.zeros(4, np.float32),
                                   old.refs, old.others, old.cut, old.floor)
    with pytest.raises(tflite_edit.GraphError, match="head changes shape"):
        tflite_edit.patch_head(data, old, grown)
    stale = tflite_edit.HeadParams(old.kernel + 1.0, old.bias, old.refs, old.others, old.cut, old.floor)
    with pytest.raises(tflite_edit.GraphError, match="kernel found 0 times"):
        tflite_edit.patch_head(data, stale, old)
    with pytest.raises(tflite_edit.GraphError, match="other animals added to or removed"):
        tflite_edit.patch_head(data, old, tflite_edit.HeadParams(old.kernel, old.bias, old.refs,
                                                                 old.others[:0], old.cut, old.floor))
    with pytest.raises(tflite_edit.GraphError, match="compares 2 nearest other animals, not 7"):
        tflite_edit.patch_head(data, old, tflite_edit.HeadParams(old.kernel, old.bias, old.refs,
                                                                 old.others[:2], old.cut, old.floor))
    with pytest.raises(tflite_edit.GraphError, match="not a readable"):
        tflite_edit.feature_extractor(b"not a flatbuffer", 16)


def test_the_live_retrain_runs_litert_and_patches_unless_the_classes_change(tmp_path):
    """From a gated model: same classes -> the base on LiteRT and model.tflite patched; a new cat ->
    LiteRT still, but a converted model.tflite. Each agrees with its model.keras, its gate rows in int8."""
    import keras
    from ai_edge_litert import schema_py_generated as fb

    from knyang_cam.classify import load_classifier
    from train.retrain import retrain

    data = tmp_path / "data"
    for name in CLASSES:
        write_class(data, name, 8)
    info = gated_model_dir(tmp_path / "v1")
    cfg = TrainConfig(image_size=SIZE, batch_size=16, head_epochs=60, head_learning_rate=0.05,
                      validation_fraction=0.25, seed=3)
    cache = tmp_path / "cache"
    same = retrain(info.path, data, tmp_path / "v2", cfg, max_drop=1.0, cache_dir=cache)
    assert same.litert_features and same.tflite_patched, same
    write_class(data, "Delta", 8)
    grown = retrain(Path(same.out), data, tmp_path / "v3", cfg, max_drop=1.0, cache_dir=cache)
    assert grown.litert_features and not grown.tflite_patched, grown
    # Another weight of the other animals is other arithmetic in the gate, not other values: converted.
    reweighed = retrain(Path(grown.out), data, tmp_path / "v4", replace(cfg, other_animal_weight=0.5),
                        max_drop=1.0, cache_dir=cache)
    assert reweighed.litert_features and not reweighed.tflite_patched, reweighed
    for out in (same.out, grown.out, reweighed.out):
        info = model_dir.read(out, need=(model_dir.KERAS_FILE, model_dir.TFLITE_FILE))
        x = crops(5, seed=9)
        lite = load_classifier(info, backend="litert", threads=1).predict(x)
        net = keras.models.load_model(info.keras_path, compile=False)
        np.testing.assert_allclose(lite, net.predict(x, verbose=0), atol=1e-3)  # up to the int8 gate rows
        assert [t.type for t in gate_rows(info.tflite_path.read_bytes())] == [fb.TensorType.INT8] * 2
        assert lite.shape == (5, len(info.classes))


def test_a_damaged_model_tflite_costs_the_retrain_speed_not_its_model(tmp_path):
    """model.tflite unreadable beside a sound model.keras: the retrain runs the base in TensorFlow and
    converts, and the new model directory is whole."""
    from knyang_cam.classify import load_classifier
    from train.retrain import retrain

    data = tmp_path / "data"
    for name in CLASSES:
        write_class(data, name, 6)
    info = gated_model_dir(tmp_path / "v1")
    (info.path / model_dir.TFLITE_FILE).write_bytes(b"TFL3 but not a model")
    cfg = TrainConfig(image_size=SIZE, batch_size=16, head_epochs=30, validation_fraction=0.34, seed=3)
    result = retrain(info.path, data, tmp_path / "v2", cfg, max_drop=1.0, cache_dir=tmp_path / "cache")
    assert not result.litert_features and not result.tflite_patched, result
    new = model_dir.read(result.out)
    assert load_classifier(new, backend="litert", threads=1).predict(crops(2)).shape == (2, len(CLASSES))
