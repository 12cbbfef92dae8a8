"""The snapshot/label writer: where files go, unique atomic names, unsafe class names, failing disks."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from knyang_cam.dataset import Saver, UnsafeName, class_dir

ROOT = Path(__file__).resolve().parent.parent


def crop(level: int = 90) -> np.ndarray:
    image = np.full((120, 100, 3), level, np.uint8)
    image[:, :50, 2] = 250  # some red so the saved JPEG is recognisably this crop
    return image


def all_files(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", "", ".", "..", ".hidden", " Leo", "a\\b", "c:d"])
def test_unsafe_class_names_are_refused(tmp_path, name):
    with pytest.raises(UnsafeName):
        class_dir(tmp_path, name)


def test_plain_and_non_ascii_names_are_folders_under_train(tmp_path):
    assert class_dir(tmp_path, "Leo") == (tmp_path / "Train" / "Leo").resolve()
    assert class_dir(tmp_path, "나비").name == "나비"


def test_a_class_folder_linking_out_of_the_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "root" / "Train").mkdir(parents=True)
    (tmp_path / "root" / "Train" / "Leo").symlink_to(outside)
    with pytest.raises(UnsafeName):
        class_dir(tmp_path / "root", "Leo")


def test_labels_unlabeled_and_snapshots_land_where_they_belong(tmp_path):
    root, snaps = tmp_path / "data", tmp_path / "snaps"
    (root / "Train" / "Eve").mkdir(parents=True)
    cv2.imwrite(str(root / "Train" / "Eve" / "old.jpg"), crop())
    with Saver(root, snaps, ["Leo", "Eve"]) as saver:
        assert saver.counts == {"Leo": 0, "Eve": 1}
        saver.label(0, crop())
        saver.label(0, crop())  # the same instant twice: two files, nothing overwritten
        saver.label(1, crop())
        saver.label(None, crop())
        saver.snapshot(np.zeros((48, 64, 3), np.uint8))
        saver.label(4, crop())
    messages = saver.poll()
    assert saver.counts == {"Leo": 2, "Eve": 2}
    leo = sorted((root / "Train" / "Leo").iterdir())
    assert len(leo) == 2 and all(p.suffix == ".jpg" for p in leo)
    image = cv2.imread(str(leo[0]))
    assert image.shape == (120, 100, 3) and image[60, 10, 2] > 200 and image[60, 90, 2] < 150
    assert len(list((root / "unlabeled").iterdir())) == 1
    assert cv2.imread(str(next(snaps.iterdir()))).shape == (48, 64, 3)
    assert "saved Leo (1)" in messages and "saved Leo (2)" in messages and "saved Eve (2)" in messages
    assert "no class 5: there are 2 (n adds one)" in messages
    # No temporary files are left behind.
    assert not [p for p in all_files(tmp_path) if p.name.startswith(".")]


def test_class_names_with_path_characters_never_write_outside_the_root(tmp_path):
    root = tmp_path / "deep" / "data"
    with Saver(root, tmp_path / "snaps", ["../../escape", "a/b", "/tmp/abs", "ok"]) as saver:
        for i in range(4):
            saver.label(i, crop())
    messages = saver.poll()
    assert sum("not a plain folder name" in m for m in messages) == 3
    assert all_files(tmp_path) == all_files(root)
    assert [p.relative_to(root).parts[:2] for p in all_files(root)] == [("Train", "ok")]


def test_unwritable_root_gives_a_message_and_the_saver_keeps_working(tmp_path):
    # Tests run as root, where chmod cannot make a folder read-only; a dataset root that is
    # an existing regular file makes every write under it fail with a real OSError instead.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with Saver(blocker, tmp_path / "snaps", ["Leo"]) as saver:
        saver.label(0, crop())
        saver.snapshot(crop())
    messages = saver.poll()
    assert f"not saved: Not a directory ({blocker / 'Train' / 'Leo'})" in messages
    assert any(m.startswith("saved ") for m in messages)  # the next save still works
    assert saver.counts == {"Leo": 0}
    assert blocker.read_text() == "x"


@pytest.mark.slow  # a subprocess
def test_full_disk_leaves_nothing_partial(tmp_path):
    """RLIMIT_FSIZE makes writes past a size fail like a full disk (EFBIG), without a mount."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from knyang_cam.dataset import Saver
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
        noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
        with Saver({str(tmp_path / 'data')!r}, {str(tmp_path / 'snaps')!r}, ["Leo"]) as saver:
            saver.label(0, noise)
            saver.label(0, noise[:8, :8])
        print("\\n".join(saver.poll()))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("not saved: File too large")
    assert lines[1] == "saved Leo (1)"
    files = list((tmp_path / "data" / "Train" / "Leo").iterdir())
    assert len(files) == 1 and cv2.imread(str(files[0])).shape == (8, 8, 3)


@pytest.mark.parametrize("layout", ["flat", "lower-case split", "new"])
def test_labels_join_the_layout_the_dataset_has_so_training_still_sees_every_photo(tmp_path, layout):
    from train import data

    root = tmp_path / "data"
    classes_at = {"flat": root, "lower-case split": root / "train", "new": root / "Train"}[layout]
    if layout != "new":
        for name in ("Eve", "Leo"):
            (classes_at / name).mkdir(parents=True)
            for k in range(3):
                cv2.imwrite(str(classes_at / name / f"{k}.jpg"), crop(40 * k))
    if layout == "lower-case split":
        (root / "validation" / "Eve").mkdir(parents=True)
        cv2.imwrite(str(root / "validation" / "Eve" / "v.jpg"), crop())
    with Saver(root, tmp_path / "snaps", ["Eve", "Leo"]) as saver:
        saver.label(0, crop())
        saver.label(1, crop())
        saver.label(1, crop())
    earlier = 0 if layout == "new" else 3
    assert f"saved Leo ({earlier + 2})" in saver.poll()
    assert len(list((classes_at / "Leo").glob("*.jpg"))) == earlier + 2
    ds = data.find_images(root, 0.25, 0)  # what training reads: the earlier photos and the new crops
    assert ds.classes == ("Eve", "Leo")
    assert len(ds.train.paths) + len(ds.validation.paths) == {"flat": 9, "lower-case split": 10, "new": 3}[layout]


def test_a_tilde_in_the_dataset_and_snapshot_folders_is_the_users_home(tmp_path, monkeypatch):
    home, here = tmp_path / "home", tmp_path / "here"
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    with Saver("~/cats", "~/snaps", ["Leo"]) as saver:
        saver.label(0, crop())
        saver.snapshot(np.zeros((48, 64, 3), np.uint8))
        saver.set_aside("not_mine", crop())
    assert len(all_files(home / "cats")) == 2 and len(all_files(home / "snaps")) == 1
    assert not all_files(here), "nothing lands in a folder named '~' of the current folder"


def test_a_new_models_classes_never_change_what_a_key_labels(tmp_path):
    with Saver(tmp_path / "data", tmp_path / "snaps", ["Chungdam", "Eve"]) as saver:
        assert saver.add_class("Abby") == "added Abby: key 3"
        assert saver.add_class("abby") == "Abby is already key 3"  # one folder where case does not count
        assert saver.add_class("eve ") == "Eve is already key 2"
        saver.set_classes(("Abby", "Chungdam", "Eve", "Zed"))  # a retrained model's classes, sorted
        assert saver.classes == ("Chungdam", "Eve", "Abby", "Zed")


def test_a_cat_a_retrained_model_brings_counts_the_photos_its_folder_holds(tmp_path):
    # Zed's photos were put in the dataset by hand; the retrain learnt him. The HUD said "Zed 0" and the next
    # label "saved Zed (1)" beside his three photos.
    for k in range(3):
        (tmp_path / "data" / "Train" / "Zed").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "data" / "Train" / "Zed" / f"{k}.jpg"), crop())
    with Saver(tmp_path / "data", tmp_path / "snaps", ["Chungdam", "Eve"]) as saver:
        saver.set_classes(("Chungdam", "Eve", "Zed"))
        assert saver.counts["Zed"] == 3
        saver.label(2, crop())
    assert saver.poll() == ["saved Zed (4)"]


def test_a_cat_folder_the_model_does_not_know_yet_has_a_key(tmp_path):
    # Zed was added with `n` in an earlier run (two photos labelled), and the app was closed before a retrain.
    train = tmp_path / "data" / "Train"
    for name, n in (("Chungdam", 2), ("Zed", 2), ("eve", 1), ("not_mine", 3), ("Abby", 0)):
        (train / name).mkdir(parents=True)
        for k in range(n):
            cv2.imwrite(str(train / name / f"{k}.jpg"), crop())
    (train / ".thumbs").mkdir()
    with Saver(tmp_path / "data", tmp_path / "snaps", ["Chungdam", "Eve"]) as saver:
        assert saver.classes == ("Chungdam", "Eve", "Abby", "Zed")  # the model's keys first, as they were
        assert saver.counts["Zed"] == 2 and saver.counts["Abby"] == 0
        saver.label(3, crop())
    assert saver.poll() == ["saved Zed (3)"]
    with Saver(tmp_path / "nowhere", tmp_path / "snaps", ["Chungdam"]) as saver:
        assert saver.classes == ("Chungdam",)


@pytest.mark.parametrize("name", ["Train", "validation", "TEST"])
def test_a_split_folders_name_is_no_new_cat_of_a_flat_dataset(tmp_path, name):
    from train import data

    root = tmp_path / "data"
    for cat in ("Eve", "Leo"):
        (root / cat).mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(root / cat / f"{k}.jpg"), crop(40 * k))
    with Saver(root, tmp_path / "snaps", ["Eve", "Leo"]) as saver:
        assert saver.add_class(name).startswith(f"not added: {name} is a split folder's name")
        saver.label(2, crop())  # no key 3
        saver.label(0, crop())
    assert len(list((root / "Eve").glob("*.jpg"))) == 4, "the flat dataset's layout is kept"
    assert data.find_images(root, 0.25, 0).classes == ("Eve", "Leo")


def test_a_split_layouts_class_may_be_named_like_a_split(tmp_path):
    with Saver(tmp_path / "data", tmp_path / "snaps", ["Eve", "Leo"]) as saver:
        assert saver.add_class("Test") == "added Test: key 3"  # data/Train/Test/: a cat like any other


def test_a_new_cats_name_too_long_for_a_folder_says_so(tmp_path):
    # It read "not added: File name too long (data)", as if the dataset's folder were at fault.
    name = "Nabi" + "y" * 296
    with Saver(tmp_path / "data", tmp_path / "snaps", ["Eve", "Leo"]) as saver:
        assert saver.add_class(name) == "not added: a name of 300 bytes (Nabiyyyyyyyy...): a folder's name has at " \
                                        "most 255"
        assert saver.add_class("나" * 85) == "added " + "나" * 85 + ": key 3"  # 255 bytes in UTF-8


def test_a_new_cat_in_another_letter_case_than_a_folder_of_the_dataset_is_that_folders_cat(tmp_path):
    from train import data

    root = tmp_path / "data"
    for cat in ("Eve", "Leo", "Nabi"):  # Nabi: a cat the current model does not know yet
        (root / "Train" / cat).mkdir(parents=True)
        cv2.imwrite(str(root / "Train" / cat / "0.jpg"), crop())
    with Saver(root, tmp_path / "snaps", ["Eve", "Leo"]) as saver:
        # A name typed in the window is easily in another case: it was refused with "type Nabi".
        assert saver.add_class("nabi") == "Nabi is already key 3"
        (root / "Train" / "Tori").mkdir()  # made by hand while the app runs
        assert saver.add_class("tori") == "added Tori: key 4"
        assert saver.counts["Nabi"] == 1
        saver.label(2, crop())
    assert not (root / "Train" / "nabi").exists()
    assert data.find_images(root, 0.25, 0).classes == ("Eve", "Leo", "Nabi")
