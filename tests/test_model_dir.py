import json
import re
import shutil

import numpy as np
import pytest

from knyang_cam import model_dir
from knyang_cam.errors import UserError
from knyang_cam.model_dir import ModelError
from tests.conftest import TINY_CLASSES


@pytest.mark.slow  # tiny_model_dir is built with Keras
def test_tiny_model_dir_has_every_file(tiny_model_dir):
    for name in ("model.keras", "model.tflite", "model.json", "report"):
        assert (tiny_model_dir / name).exists(), name
    info = model_dir.read(tiny_model_dir)
    assert info.classes == TINY_CLASSES
    assert info.input_size == (64, 64)
    assert json.loads((tiny_model_dir / "model.json").read_text())["input"] == "rgb_0_255"


@pytest.mark.slow  # tiny_model_dir is built with Keras
def test_keras_and_tflite_agree(tiny_model_dir):
    import keras

    from knyang_cam.classify import load_classifier

    x = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    ref = keras.models.load_model(tiny_model_dir / "model.keras")(x).numpy()
    got = load_classifier(model_dir.read(tiny_model_dir), backend="litert").predict(x)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_missing_dir_names_rebuild_command(tmp_path, monkeypatch):
    from knyang_cam import bundled

    monkeypatch.chdir(bundled.CLONE_ROOT)
    with pytest.raises(ModelError, match=r"model directory not found: .*python -m train --data"):
        model_dir.read(tmp_path / "nope")


def test_from_another_folder_an_editable_install_names_its_installed_trainer(tmp_path, monkeypatch):
    """`pip install -e .` (README's Quick start), then the app run from the user's home folder: `python -m train`
    there is 'No module named train'."""
    from importlib import util

    from knyang_cam.cat_finder import CatFinder

    if util.find_spec("knyang_train") is None:
        pytest.skip("the project is not installed (no knyang_train)")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as e:
        model_dir.read(tmp_path / "nope")
    assert str(e.value).endswith(f"(rebuild it with: knyang-train --data DATASET_DIR --out {tmp_path / 'nope'})")
    with pytest.raises(UserError, match=r"rebuild it with python -m knyang_train\.finder$"):
        CatFinder(tmp_path / "nope")


def test_a_folder_of_model_directories_names_one_to_give(tmp_path):
    for name in ("tabby", "house"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text("{}")
    with pytest.raises(ModelError, match=rf"^{re.escape(str(tmp_path))} holds model directories, not a model: give "
                                         rf"one of them, such as {re.escape(str(tmp_path / 'house'))}$"):
        model_dir.read(tmp_path)


def test_a_folder_of_other_files_is_no_model_and_a_broken_model_is_to_rebuild(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"a photo")
    with pytest.raises(ModelError, match=rf"^{re.escape(str(tmp_path))} is not a model directory: no model.json, only "
                                         r"files no model holds \(such as photo.jpg\); give the folder knyang-train "
                                         r"wrote \(its --out\)$"):
        model_dir.read(tmp_path)
    (tmp_path / "model.tflite").write_bytes(b"")  # a model's own file: a model that lost its model.json
    with pytest.raises(ModelError, match=r"^model is missing .*model\.json \(rebuild it with: "):
        model_dir.read(tmp_path)


def test_installed_the_rebuild_command_is_the_installed_trainer(tmp_path, monkeypatch):
    """A wheel has no `train` module (`python -m train` fails, or runs a user's own train.py)."""
    from knyang_cam import bundled
    from knyang_cam.cat_finder import CatFinder

    monkeypatch.setattr(bundled, "root", lambda: tmp_path / "site-packages" / "knyang_cam" / "_bundled")
    with pytest.raises(ModelError) as e:
        model_dir.read(tmp_path / "nope")
    assert str(e.value).endswith(f"(rebuild it with: knyang-train --data DATASET_DIR --out {tmp_path / 'nope'})")
    with pytest.raises(UserError, match=r"rebuild it with python -m knyang_train\.finder$"):
        CatFinder(tmp_path / "nope")


@pytest.mark.slow  # tiny_model_dir is built with Keras
def test_missing_file_is_named(tiny_model_dir, tmp_path):
    broken = tmp_path / "m"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.tflite").unlink()
    with pytest.raises(ModelError, match=r"missing .*model.tflite"):
        model_dir.read(broken)


@pytest.mark.slow  # tiny_model_dir is built with Keras
def test_invalid_json_is_named(tiny_model_dir, tmp_path):
    broken = tmp_path / "m"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"model.json is unreadable"):
        model_dir.read(broken)


@pytest.mark.slow  # tiny_model_dir is built with Keras
def test_written_files_are_readable_by_others(tiny_model_dir):
    # mkstemp creates 0600 files; a model directory must be readable like any other file.
    assert (tiny_model_dir / "model.json").stat().st_mode & 0o044 == 0o044


@pytest.mark.parametrize("change, words", [
    ({"input_size": "INF"}, "cannot convert float infinity"),
    ({"input_size": [0, 160]}, "input_size [0, 160] not in 1..4096"),
    ({"classes": "abcde"}, "classes must be a list of names"),
    ({"classes": [1, 2]}, "classes must be a list of names"),
    ({"classes": ["Eve", "Unknown"]}, "class 'Unknown' has a reserved name"),
    ({"classes": ["Eve", " "]}, "class name ' ' is blank"),
    ({"classes": ["Eve", "Le\u0000o"]}, "holds a control character"),
    ({"classes": ["Eve", "Le\no"]}, "holds a control character"),
    ({"format": True}, "format True, expected 1"),
])
def test_model_json_values_outside_the_contract_are_refused(tmp_path, change, words):
    (tmp_path / "model.tflite").write_bytes(b"never read: model.json is checked first")
    meta = {"format": 1, "classes": ["Eve", "Leo"], "input_size": [160, 160], **change}
    (tmp_path / "model.json").write_text(json.dumps(meta).replace('"INF"', "[1e999, 160]"))
    with pytest.raises(ModelError, match=re.escape(words)):
        model_dir.read(tmp_path)


def test_model_json_nested_past_the_parser_is_one_error(tmp_path):
    (tmp_path / "model.json").write_text("[" * 100_000)
    with pytest.raises(ModelError, match="unreadable: maximum recursion depth"):
        model_dir.read(tmp_path)


@pytest.mark.parametrize("field", ["classes", "input_size"])
def test_a_missing_field_is_named(tmp_path, field):
    meta = {"format": 1, "classes": ["Eve", "Leo"], "input_size": [160, 160]}
    del meta[field]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    (tmp_path / "model.tflite").write_bytes(b"never read")
    with pytest.raises(ModelError, match=f"is invalid: missing field {field} "):
        model_dir.read(tmp_path)


@pytest.mark.parametrize("familiarity", [5, "gate", [1, 2], None])
def test_a_familiarity_entry_of_another_shape_is_skipped(tmp_path, familiarity):
    """Readers must not need the field (docs/contracts.md): its shape does not refuse the model."""
    meta = {"format": 1, "classes": ["Eve", "Leo"], "input_size": [160, 160], "familiarity": familiarity}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    (tmp_path / "model.tflite").write_bytes(b"never read")
    assert model_dir.read(tmp_path).familiarity == {}
