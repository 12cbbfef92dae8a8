import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_model_dir
from knyang_cam import model_dir
from knyang_cam.classify import load_classifier, resolve_backend
from knyang_cam.model_dir import ModelError

pytestmark = pytest.mark.slow  # every test loads a Keras-built model (tiny_model_dir); one backend is TensorFlow


@pytest.fixture(scope="module")
def info(tiny_model_dir):
    return model_dir.read(tiny_model_dir)


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(3)
    # Structured images (not just noise) so the three classes get clearly different scores.
    x = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    x[1] = 0
    x[2] = 255
    x[3, :, :32] = 0
    return x


@pytest.fixture(scope="module")
def keras_probs(info, crops):
    import keras

    model = keras.saving.load_model(info.keras_path, compile=False)
    return np.asarray(model(crops.astype(np.float32), training=False))


@pytest.fixture(scope="module")
def litert(info):
    return load_classifier(info, "litert", threads=2)


@pytest.fixture(scope="module")
def tf_clf(info):
    return load_classifier(info, "tensorflow")


def test_litert_matches_keras(litert, crops, keras_probs):
    assert litert.backend == "litert"
    assert litert.classes == ("Alpha", "Beta", "Gamma") and litert.input_size == (64, 64)
    p = litert.predict(crops)
    assert p.shape == (5, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p, keras_probs, atol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    # The crops differ enough that a backend returning one row for all would fail here.
    assert np.ptp(p, axis=0).max() > 1e-3


def test_tensorflow_matches_keras_and_litert(tf_clf, litert, crops, keras_probs):
    assert tf_clf.backend == "tensorflow"
    p = tf_clf.predict(crops)
    assert p.shape == (5, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p, keras_probs, atol=1e-5)
    np.testing.assert_allclose(p, litert.predict(crops), atol=1e-5)


@pytest.mark.parametrize("backend", ["litert", "tensorflow"])
def test_batch_sizes_1_5_0_give_the_same_rows(backend, litert, tf_clf, crops, keras_probs):
    clf = litert if backend == "litert" else tf_clf
    for i in range(len(crops)):
        np.testing.assert_allclose(clf.predict(crops[i:i + 1]), keras_probs[i:i + 1], atol=1e-5)
    np.testing.assert_allclose(clf.predict(crops), keras_probs, atol=1e-5)
    empty = clf.predict(np.zeros((0, 64, 64, 3), np.uint8))
    assert empty.shape == (0, 3) and empty.dtype == np.float32
    # Going back to a batch size seen before still gives the right answer.
    np.testing.assert_allclose(clf.predict(crops[:2]), keras_probs[:2], atol=1e-5)


@pytest.mark.parametrize("backend", ["litert", "tensorflow"])
def test_uint8_and_float32_inputs_agree(backend, litert, tf_clf, crops):
    clf = litert if backend == "litert" else tf_clf
    np.testing.assert_allclose(clf.predict(crops), clf.predict(crops.astype(np.float32)), atol=1e-6)


def test_wrong_crop_shape_is_a_clear_error(litert):
    with pytest.raises(ValueError, match=r"\[N, 64, 64, 3\]"):
        litert.predict(np.zeros((1, 32, 32, 3), np.uint8))


def test_tensorflow_does_not_retrace_for_varying_batch_sizes(tf_clf):
    rng = np.random.default_rng(0)
    for n in list(range(1, 9)) * 3 + [0, 3, 8, 1]:
        tf_clf.predict(rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8))
    assert tf_clf.tracing_count() == 1


def test_corrupt_tflite_is_a_model_error(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.tflite").write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(ModelError) as e:
        load_classifier(model_dir.read(bad), "litert")
    msg = str(e.value)
    assert "\n" not in msg
    assert str(bad / "model.tflite") in msg and "python -m train" in msg


def test_corrupt_keras_is_a_model_error(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.keras").write_bytes(b"not a zip archive")
    with pytest.raises(ModelError, match=r"model\.keras.*python -m train"):
        load_classifier(model_dir.read(bad), "tensorflow")


def _with_meta(src, dst, **changes):
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    meta.update(changes)
    (dst / "model.json").write_text(json.dumps(meta))
    return model_dir.read(dst)


@pytest.mark.parametrize("backend", ["litert", "tensorflow"])
def test_class_count_mismatch_is_a_model_error(backend, tiny_model_dir, tmp_path):
    info = _with_meta(tiny_model_dir, tmp_path / "m", classes=["A", "B", "C", "D"])
    with pytest.raises(ModelError, match=r"model\.json lists 4 classes but .* outputs 3 .*python -m train"):
        load_classifier(info, backend)


@pytest.mark.parametrize("backend", ["litert", "tensorflow"])
def test_input_size_mismatch_is_a_model_error(backend, tiny_model_dir, tmp_path):
    info = _with_meta(tiny_model_dir, tmp_path / "m", input_size=[96, 96])
    with pytest.raises(ModelError, match=r"takes input \[64, 64, 3\] .* input_size \[96, 96\]"):
        load_classifier(info, backend)


def test_missing_network_file_is_a_model_error(tiny_model_dir, tmp_path):
    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir, m)
    (m / "model.keras").unlink()
    with pytest.raises(ModelError, match=r"missing .*model\.keras"):
        load_classifier(model_dir.read(m), "tensorflow")


def test_other_class_counts_load(tmp_path):
    info = model_dir.read(make_model_dir(tmp_path / "five", classes=list("ABCDE"), size=32))
    p = load_classifier(info, "litert").predict(np.zeros((2, 32, 32, 3), np.uint8))
    assert p.shape == (2, 5)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("onnx")


def test_litert_path_does_not_import_tensorflow(tiny_model_dir):
    code = (
        "import sys\n"
        "from knyang_cam import model_dir, classify\n"
        f"c = classify.load_classifier(model_dir.read({str(tiny_model_dir)!r}), 'litert')\n"
        "import numpy as np; c.predict(np.zeros((1, 64, 64, 3), np.uint8))\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
