"""Dataset discovery and decoding on generated folders: layouts, EXIF, odd files, user errors."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clips import write_class
from train import data
from train.data import DatasetError

ROOT = Path(__file__).resolve().parent.parent
RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def photo(path: Path, color=RED, size=(48, 40), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)
    return path


def class_folders(root: Path, counts: dict[str, int]) -> Path:
    for i, (name, n) in enumerate(counts.items()):
        for k in range(n):
            photo(root / name / f"{k:03d}.jpg", (40 * i, 100, 200 - 40 * i))
    return root


def close(pixel, color, tol=40) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(color, int)) <= tol))


def test_split_layout_is_used_as_is(tmp_path):
    class_folders(tmp_path / "Train", {"Tom": 4, "Ann": 3})
    class_folders(tmp_path / "Validation", {"Tom": 2, "Ann": 1})
    class_folders(tmp_path / "Test", {"Tom": 1, "Ann": 1})
    ds = data.find_images(tmp_path)
    assert ds.layout == "split"
    assert ds.classes == ("Ann", "Tom")  # sorted folder names
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (7, 3, 2)
    assert ds.train.labels.count(0) == 3 and ds.validation.labels.count(1) == 2
    assert all(p.parent.parent.name == "Validation" for p in ds.validation.paths)


def test_class_layout_is_split_stratified_and_repeatably(tmp_path):
    class_folders(tmp_path, {"A": 10, "B": 5, "C": 2})
    ds = data.find_images(tmp_path, validation_fraction=0.2, seed=7)
    assert ds.layout == "classes" and ds.classes == ("A", "B", "C")
    assert [ds.validation.labels.count(c) for c in range(3)] == [2, 1, 1]
    assert [ds.train.labels.count(c) for c in range(3)] == [8, 4, 1]
    assert not set(ds.train.paths) & set(ds.validation.paths)
    assert data.find_images(tmp_path, 0.2, seed=7) == ds
    other = [data.find_images(tmp_path, 0.2, seed=s).validation.paths for s in range(1, 6)]
    assert any(paths != ds.validation.paths for paths in other)


def test_hidden_files_and_folders_are_ignored(tmp_path):
    class_folders(tmp_path, {"A": 2, "B": 2})
    photo(tmp_path / "A" / ".thumb.jpg")
    photo(tmp_path / "B" / ".cache" / "x.jpg")
    photo(tmp_path / ".trash" / "y.jpg")
    ds = data.find_images(tmp_path)
    assert ds.classes == ("A", "B") and len(ds.train) + len(ds.validation) == 4


def test_exif_rotated_jpeg_is_decoded_upright(tmp_path):
    # Upright: a portrait photo, red top half, blue bottom half. The camera stored it
    # turned 90 degrees counter-clockwise (red on the left) with EXIF Orientation=6.
    upright = np.zeros((80, 40, 3), np.uint8)
    upright[:40], upright[40:] = RED, BLUE
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    assert stored.size == (80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    stored.save(path, exif=exif.tobytes(), quality=95)

    pixels = data.load_image(path, 40)
    assert pixels.shape == (40, 40, 3)
    # The centre square of the upright portrait: red above, blue below.
    assert close(pixels[5, 20], RED) and close(pixels[34, 20], BLUE)
    assert close(pixels[20, 5], pixels[20, 34], tol=60)  # not red-left / blue-right


def test_odd_modes_and_a_huge_photo_decode_to_rgb(tmp_path):
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (50, 50), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    grey = tmp_path / "grey.png"
    Image.new("L", (50, 30), 128).save(grey)
    alpha = tmp_path / "alpha.png"
    rgba = Image.new("RGBA", (40, 40), (0, 0, 255, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 40, 20))  # top half fully transparent
    rgba.save(alpha)
    palette = tmp_path / "palette.gif"
    Image.new("RGB", (30, 30), GREEN).convert("P").save(palette)
    huge = tmp_path / "huge.jpg"
    Image.new("RGB", (8000, 6000), BLUE).save(huge, quality=70)

    out = {p.name: data.load_image(p, 32) for p in (cmyk, grey, alpha, palette, huge)}
    for name, pixels in out.items():
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8, name
    assert close(out["cmyk.jpg"][16, 16], (255, 0, 0), tol=50)
    assert close(out["grey.png"][16, 16], (128, 128, 128), tol=2)
    assert close(out["alpha.png"][2, 16], (255, 255, 255), tol=2)  # transparent: over white
    assert close(out["alpha.png"][30, 16], (0, 0, 255), tol=2)
    assert close(out["palette.gif"][16, 16], GREEN, tol=30)
    assert close(out["huge.jpg"][16, 16], BLUE, tol=20)


def test_undecodable_files_are_skipped_and_listed(tmp_path):
    class_folders(tmp_path / "Train", {"A": 2, "B": 2})
    class_folders(tmp_path / "Validation", {"A": 1, "B": 1})
    bad = tmp_path / "Train" / "A"
    (bad / "zero.jpg").write_bytes(b"")
    (bad / "notes.txt").write_text("not a photo")
    (bad / "random.png").write_bytes(np.random.default_rng(0).bytes(3000))
    full = photo(tmp_path / "x.jpg", size=(300, 300)).read_bytes()
    (bad / "truncated.jpg").write_bytes(full[: len(full) // 2])

    ds = data.find_images(tmp_path)
    images = data.decode_split(ds.train, ds.classes, 32)
    assert len(images.labels) == 4 and images.pixels.shape == (4, 32, 32, 3)
    assert sorted(p.name for p, _ in images.skipped) == ["notes.txt", "random.png", "truncated.jpg",
                                                        "zero.jpg"]
    assert all(why for _, why in images.skipped)
    assert not set(images.paths) & {p for p, _ in images.skipped}


def test_missing_empty_and_one_class_datasets_are_user_errors(tmp_path):
    with pytest.raises(DatasetError, match="--data .*nope not found"):
        data.find_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        data.find_images(tmp_path / "empty")
    (tmp_path / "empty" / "A").mkdir()  # a class folder without files is no class
    with pytest.raises(DatasetError, match="no class folders"):
        data.find_images(tmp_path / "empty")
    class_folders(tmp_path / "one", {"Solo": 3})
    with pytest.raises(DatasetError, match=r"only one class \(Solo\)") as e:
        data.find_images(tmp_path / "one")
    assert "with one cat, add a folder of another cat" in str(e.value)  # a household of one has something to do
    class_folders(tmp_path / "split" / "Train", {"Solo": 3})
    with pytest.raises(DatasetError, match="only one class"):
        data.find_images(tmp_path / "split")


def test_a_layout_that_would_leave_photos_out_unseen_is_refused(tmp_path):
    # A flat dataset with a Test folder: Test was trained as a cat (and the label keys, which see split
    # folders, would start a Train folder that hides every photo beside it).
    class_folders(tmp_path / "a", {"Tom": 3, "Ann": 3})
    class_folders(tmp_path / "a" / "Test", {"Tom": 1})
    with pytest.raises(DatasetError, match="Test has no Train folder beside it"):
        data.find_images(tmp_path / "a")
    # Photos beside a Train folder were left out.
    class_folders(tmp_path / "b" / "Train", {"Tom": 3, "Ann": 3})
    class_folders(tmp_path / "b", {"Momo": 3})
    with pytest.raises(DatasetError, match="class folders beside its Train folder.*: Momo"):
        data.find_images(tmp_path / "b")
    # Train and train on a case-sensitive disk: one was left out.
    class_folders(tmp_path / "c" / "Train", {"Tom": 3, "Ann": 3})
    class_folders(tmp_path / "c" / "train", {"Momo": 3})
    if len(list((tmp_path / "c").iterdir())) == 2:
        with pytest.raises(DatasetError, match="split folders Train and train .* differ only in letter case"):
            data.find_images(tmp_path / "c")
    # What stays allowed: empty split folders, the reserved folders beside Train.
    class_folders(tmp_path / "d", {"Tom": 3, "Ann": 3})
    (tmp_path / "d" / "Test").mkdir()
    assert data.find_images(tmp_path / "d").classes == ("Ann", "Tom")
    class_folders(tmp_path / "e" / "Train", {"Tom": 3, "Ann": 3})
    class_folders(tmp_path / "e", {"not_mine": 1, "unlabeled": 1})
    assert data.find_images(tmp_path / "e").classes == ("Ann", "Tom")


@pytest.mark.parametrize("split", ["Validation", "Test"])
def test_a_validation_or_test_class_that_train_lacks_is_refused(tmp_path, split):
    class_folders(tmp_path / "Train", {"Tom": 3, "Ann": 3})
    class_folders(tmp_path / "Validation", {"Tom": 1, "Ann": 1})
    class_folders(tmp_path / split, {"Tom": 1, "Extra": 2})  # scored without its Extra photos, unsaid
    with pytest.raises(DatasetError, match=rf"{split} has classes not in Train: Extra") as e:
        data.find_images(tmp_path)
    assert f"add photos of it to {tmp_path / 'Train' / 'Extra'}/" in str(e.value)  # what to do, not only what is wrong


@pytest.mark.parametrize("layout", ["", "Train"])
def test_class_folders_that_differ_only_in_case_are_refused(tmp_path, layout):
    class_folders(tmp_path / "d" / layout, {"Eve": 3, "Leo": 3, "eve": 3})
    with pytest.raises(DatasetError, match=r"class folders .*Eve and .*eve differ only in letter case"):
        data.find_images(tmp_path / "d")


@pytest.mark.parametrize("layout", ["", "Train"])
def test_class_folders_that_differ_only_in_unicode_normalisation_are_refused(tmp_path, layout):
    # One name typed here (NFC), one copied from a Mac (NFD): drawn alike, they were trained as two cats.
    class_folders(tmp_path / "d" / layout, {"Zo\u00eb": 3, "Leo": 3, "Zoe\u0308": 3})
    with pytest.raises(DatasetError, match=r"class folders .*Zo.* and .*Zo.* differ only in how their accents"):
        data.find_images(tmp_path / "d")


@pytest.mark.parametrize("name", ["a\nb", "tab\there"])
def test_a_class_folder_name_with_a_control_character_is_refused(tmp_path, name):
    # model.json refuses it at the export, after the whole training, with a traceback.
    class_folders(tmp_path, {"Leo": 3, name: 3})
    with pytest.raises(DatasetError, match="holds a control character"):
        data.find_images(tmp_path)


def test_a_photo_over_pils_warning_size_decodes_without_pythons_warning_lines(tmp_path, monkeypatch):
    from train.__main__ import _check_dataset

    # 48x40 is over this limit as a 108 MP phone photo is over PIL's 89 MP (and under twice it, its error).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)
    class_folders(tmp_path, {"A": 3, "B": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_dataset(data.find_images(tmp_path))
        assert data.load_image(tmp_path / "A" / "000.jpg", 32).shape == (32, 32, 3)


@pytest.mark.parametrize("inside", ["models/knyang", "models/finder", "models", "cats"])
def test_a_model_directory_is_no_cat_nor_dataset(tmp_path, inside):
    # --data models read the shipped models' files as photos that do not decode, and said to remove them.
    class_folders(tmp_path / "cats", {"Eve": 3, "Leo": 3})
    (tmp_path / "cats" / "Leo" / "model.json").write_text("{}")
    (tmp_path / "models" / "knyang").mkdir(parents=True)
    (tmp_path / "models" / "knyang" / "model.json").write_text("{}")
    (tmp_path / "models" / "knyang" / "model.keras").write_text("")
    (tmp_path / "models" / "finder").mkdir()
    (tmp_path / "models" / "finder" / "finder.json").write_text("{}")
    with pytest.raises(DatasetError, match="is a model directory, not photos of a cat"):
        data.find_images(tmp_path / inside)


def test_class_without_decodable_photo_is_a_user_error(tmp_path):
    class_folders(tmp_path, {"A": 3})
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    ds = data.find_images(tmp_path)
    images = data.decode_split(ds.train, ds.classes, 32)
    with pytest.raises(DatasetError, match="no decodable image for class B"):
        data.require_every_class(images.labels, ds.classes, "training", tmp_path)


def run_train(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, **kw)


@pytest.mark.slow  # python -m train subprocesses
@pytest.mark.parametrize("case", ["missing", "empty", "one-class", "undecodable-class"])
def test_cli_exits_2_with_one_line(tmp_path, case):
    root = tmp_path / "cats"
    if case == "empty":
        root.mkdir()
    elif case == "one-class":
        class_folders(root, {"Solo": 4})
    elif case == "undecodable-class":
        class_folders(root, {"A": 4})
        (root / "B").mkdir(parents=True)
        (root / "B" / "a.jpg").write_bytes(b"")
        (root / "B" / "b.jpg").write_bytes(b"GIF89a")
    r = run_train("--data", str(root), "--out", str(tmp_path / "model"), "--weights", "none")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(root) in errors[0], r.stderr
    assert not (tmp_path / "model").exists()


def test_a_flipped_view_is_the_mirror_of_the_same_crop():
    from train.data import View, crop_view

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    plain = crop_view(photo, View(0.8, 0.5, -0.5), 32)
    mirrored = crop_view(photo, View(0.8, 0.5, -0.5, flip=True), 32)
    np.testing.assert_array_equal(mirrored, plain[:, ::-1])
    assert View(0.8, 0.5, -0.5, flip=True).name != View(0.8, 0.5, -0.5).name  # distinct cache keys


def test_a_turned_view_is_the_crop_turned_and_its_mirror_is_what_the_model_averages_it_with():
    from train.data import View, crop_view

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    plain = crop_view(photo, View(0.8, 0.5, -0.5), 32)
    for turn in (1, 2, 3):
        turned = crop_view(photo, View(0.8, 0.5, -0.5, turn=turn), 32)
        np.testing.assert_array_equal(turned, np.rot90(plain, turn))
        # The model averages a crop with its mirror image left to right: the turned crop's, not the crop's.
        np.testing.assert_array_equal(crop_view(photo, View(0.8, 0.5, -0.5, flip=True, turn=turn), 32), turned[:, ::-1])
    assert len({View(1.0, turn=t).name for t in range(4)} | {View(1.0, flip=True, turn=1).name}) == 5
    with pytest.raises(ValueError, match="turn"):
        View(1.0, turn=4)


def test_a_framed_view_is_the_crop_shrunk_into_a_drawn_scene_the_same_every_time():
    from train.data import View, crop_view

    photo = np.full((120, 160, 3), (200, 40, 40), np.uint8)  # one flat colour: the scene is what differs
    view = View(1.0, scene=3)
    framed = crop_view(photo, view, 64)
    np.testing.assert_array_equal(framed, crop_view(photo, view, 64))  # a fixed crop: the cache may key it by name
    is_photo = np.all(framed == (200, 40, 40), axis=-1)
    # The photo covers most of the crop (INSET is 70-95% of the side) but not all of it.
    assert 0.4 < is_photo.mean() < 0.95, is_photo.mean()
    ys, xs = np.nonzero(is_photo)
    assert ys.max() - ys.min() + 1 >= 0.69 * 64 and xs.max() - xs.min() + 1 >= 0.69 * 64
    assert not np.array_equal(framed, crop_view(photo, View(1.0, scene=2), 64))  # another scene number, another scene
    assert len({View(1.0).name, view.name, View(1.0, scene=2).name, View(1.0, flip=True, scene=3).name}) == 4
    assert np.all(crop_view(photo, View(1.0), 64) == (200, 40, 40))  # a plain view shows the photo alone


def test_a_low_view_loses_fine_detail_as_a_small_cat_on_video_does():
    from train.data import View, crop_view

    # Fine stripes (2 pixels), like a tabby's fur at the crop's size, over a slow gradient.
    photo = np.zeros((128, 128, 3), np.uint8)
    photo[:, :, 0] = np.linspace(60, 200, 128, dtype=np.uint8)[None, :]
    photo[::4, :, 1] = 255
    photo[1::4, :, 1] = 255
    sharp = crop_view(photo, View(1.0), 128)
    low = crop_view(photo, View(1.0, low=48), 128)
    assert low.shape == sharp.shape and low.dtype == np.uint8
    np.testing.assert_array_equal(low, crop_view(photo, View(1.0, low=48), 128))  # cached by name: fixed
    stripes = lambda img: float(np.abs(np.diff(img[:, :, 1].astype(int), axis=0)).mean())  # noqa: E731
    assert stripes(low) < 0.5 * stripes(sharp)  # the stripes are smeared ...
    assert abs(float(low[:, :, 0].mean()) - float(sharp[:, :, 0].mean())) < 3  # ... the picture is not
    assert View(1.0, low=48).name != View(1.0).name != View(1.0, low=64).name


def test_adding_a_class_keeps_the_other_classes_split(tmp_path):
    for name in ("Alpha", "Gamma"):
        write_class(tmp_path, name, 10)
    before = data.find_images(tmp_path, 0.3, seed=4)
    write_class(tmp_path, "Beta", 10)
    after = data.find_images(tmp_path, 0.3, seed=4)
    assert set(before.validation.paths) < set(after.validation.paths)
    assert set(before.train.paths) < set(after.train.paths)


def test_adding_photos_to_a_class_keeps_its_validation_photos(tmp_path):
    # The live retrain compares with the current model on the photos held out both times: a reshuffle
    # of the grown class moved most of them (a 7-photo household compared 0.571 with 0.857 on others).
    moved = 0
    for seed in range(12):
        root = tmp_path / f"s{seed}"
        write_class(root, "Alpha", 10)
        write_class(root, "Gamma", 5)
        held = set(data.find_images(root, 0.2, seed).validation.paths)
        for start, n in ((10, 1), (11, 2)):
            new = set(write_class(root, "Alpha", n, start=start))
            now = set(data.find_images(root, 0.2, seed).validation.paths)
            # A held-out photo leaves only for a new photo that takes its place.
            assert len(held - now) <= len(now & new), seed
            moved += len(held - now)
            held = now
    assert moved < 12  # mostly none leaves (a new photo takes a place with the odds of a place)


def test_a_file_not_named_as_a_photo_is_never_held_out_for_validation(tmp_path):
    # Thumbs.db in a class of two photos: held out, it would be the class's only validation "photo";
    # so would an empty .jpg (a copy that failed): the class's row read '-' without a word.
    for seed in range(20):
        root = class_folders(tmp_path / f"s{seed}", {"Tom": 2, "Ann": 2})
        (root / "Tom" / "Thumbs.db").write_bytes(b"not a photo")
        (root / "Tom" / "IMG_0001.jpg").write_bytes(b"")
        ds = data.find_images(root, 0.2, seed)
        assert all(p.suffix == ".jpg" and p.stat().st_size for p in ds.validation.paths)
        assert sorted(ds.validation.labels) == [0, 1]
        assert {root / "Tom" / "Thumbs.db", root / "Tom" / "IMG_0001.jpg"} <= set(ds.train.paths)  # tried, skipped


def test_an_empty_validation_folder_is_no_split(tmp_path):
    class_folders(tmp_path / "Train", {"Tom": 4, "Ann": 4})
    (tmp_path / "Validation" / "Tom").mkdir(parents=True)
    ds = data.find_images(tmp_path, 0.25, 0)
    assert ds.layout == "classes" and len(ds.validation.paths) == 2  # split by seed, as without the folder


def test_the_config_allows_every_training_view_and_no_more():
    # config.py cannot import training (the app never does), so its bounds repeat the recipe's length.
    from dataclasses import fields

    from knyang_cam.config import TrainConfig
    from train.recipe import TRAIN_VIEWS

    bounds = {f.name: f.metadata["range"] for f in fields(TrainConfig) if f.name in ("head_views", "reference_views")}
    assert bounds == {"head_views": (1, len(TRAIN_VIEWS)), "reference_views": (1, len(TRAIN_VIEWS))}
    assert TrainConfig().head_views == len(TRAIN_VIEWS)


@pytest.mark.parametrize("layout", ["", "Train"])
def test_an_empty_class_folder_is_named_in_a_warning(tmp_path, layout):
    # A folder made for a cat and left empty (or holding only .DS_Store) was dropped without a word.
    from train.pipeline import left_out

    folder = class_folders(tmp_path / layout, {"Tom": 3, "Ann": 3}) / "Empty Cat"
    folder.mkdir()
    (folder / ".DS_Store").write_bytes(b"\0")
    ds = data.find_images(tmp_path, 0.2, 0)
    assert ds.classes == ("Ann", "Tom") and ds.empty == (folder,)
    [warning] = left_out(ds)
    assert str(folder) in warning and "add its photos or remove the folder" in warning
    assert left_out(data.find_images(class_folders(tmp_path / "full", {"A": 2, "B": 2}))) == ()


def test_a_thin_class_is_warned_with_its_number_of_photos():
    from train.pipeline import thin

    one, three = thin(("Pharaoh", "Zoe", "Big"), [1, 3, 10])
    assert one.startswith("class Pharaoh has only 1 photo to learn from (fewer than 10)")
    assert three.startswith("class Zoe has only 3 photos to learn from")


def test_a_class_missing_from_validation_is_named_in_a_warning(tmp_path):
    # A Validation folder without one of the cats scored the others 1.000 and that cat not at all, without a word.
    from train.pipeline import unmeasured

    class_folders(tmp_path / "Train", {"Leo": 3, "Ming": 3, "Eve": 3})
    class_folders(tmp_path / "Validation", {"Leo": 1, "Ming": 1})
    ds = data.find_images(tmp_path)
    [warning] = unmeasured(ds, ds.validation.labels)
    assert warning.startswith("class Eve has no validation photos") and str(tmp_path / "Validation" / "Eve") in warning
    flat = data.find_images(class_folders(tmp_path / "flat", {"A": 1, "B": 3}))
    assert unmeasured(flat, flat.validation.labels) == ()  # a class of one photo: `thin` says so


def test_the_same_photo_in_two_cats_folders_is_named_in_a_warning(tmp_path):
    # A photo copied into the wrong cat's folder was learnt as both cats without a word.
    from train.pipeline import in_two_classes

    root = tmp_path
    paths = [photo(root / cat / f"{k}.jpg", (10 * k, 100, 200 if cat == "Cleo" else 0))
             for cat in ("Mochi", "Cleo") for k in range(2)]
    copy = root / "Cleo" / "oops.jpg"
    copy.write_bytes((root / "Mochi" / "1.jpg").read_bytes())
    same_cat = root / "Mochi" / "again.jpg"
    same_cat.write_bytes((root / "Mochi" / "0.jpg").read_bytes())  # twice in one cat: no mislabel
    paths = paths[:2] + [same_cat] + paths[2:] + [copy]
    [warning] = in_two_classes(paths, [0, 0, 0, 1, 1, 1], ("Mochi", "Cleo"))
    assert warning == (f"the same photo is in two cats' folders: {root / 'Mochi' / '1.jpg'} (Mochi) and {copy} "
                       f"(Cleo); keep it in the right cat's folder only")


def test_a_heic_photo_is_skipped_with_what_to_do(tmp_path):
    # "cannot identify image file" told an iPhone user nothing: HEIC is read only with a plugin we do not ship.
    heic = tmp_path / "IMG_8888.HEIC"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(200))
    jpeg = photo(tmp_path / "IMG_0001.heic", fmt="JPEG")  # a JPEG named .heic reads as what it is
    images = data.decode_split(data.Split((heic, jpeg), (0, 1)), ("A", "B"), 32)
    [(path, reason)] = images.skipped
    assert path == heic and "HEIC" in reason and "JPEG" in reason
    assert images.paths == (jpeg,)


def test_an_empty_photo_file_is_skipped_as_empty(tmp_path):
    # "cannot identify image file" for a 0-byte file (a copy that never finished) sent users to look at the codec.
    empty, broken = tmp_path / "IMG_0002.jpg", tmp_path / "IMG_0003.jpg"
    empty.write_bytes(b"")
    broken.write_bytes(b"not a photo")
    good = photo(tmp_path / "IMG_0001.jpg", fmt="JPEG")
    images = data.decode_split(data.Split((empty, broken, good), (0, 1, 1)), ("A", "B"), 32)
    reasons = dict(images.skipped)
    assert "empty file (0 bytes)" in reasons[empty] and "0 bytes" not in reasons[broken]
    assert images.paths == (good,)


@pytest.mark.parametrize("layout", ["", "Train"])
def test_photos_beside_the_class_folders_are_named_in_a_warning(tmp_path, layout):
    # Photos dropped next to the cats' folders were left out without a word.
    from train.pipeline import outside_classes

    folder = class_folders(tmp_path / layout, {"Tom": 3, "Ann": 3})
    for name in ("IMG_1.JPG", "IMG_2.png"):
        photo(folder / name)
    (folder / "Thumbs.db").write_bytes(b"\0")  # not a photo: no warning of its own
    ds = data.find_images(tmp_path, 0.2, 0)
    assert ds.loose == (folder / "IMG_1.JPG", folder / "IMG_2.png")
    assert outside_classes(ds) == (f"2 photos directly in {folder} (such as IMG_1.JPG) are in no cat's folder "
                                   f"and left out of training: move each into its cat's folder",)
    assert outside_classes(data.find_images(class_folders(tmp_path / "tidy", {"A": 2, "B": 2}))) == ()


def test_a_class_whose_training_photos_do_not_decode_names_them(tmp_path):
    # A cat of two photos, one truncated: when the split held out the good one, the error said only
    # "no decodable image for class B", and the user saw a good photo of B in its folder.
    class_folders(tmp_path / "Train", {"A": 3})
    class_folders(tmp_path / "Validation", {"A": 1, "B": 1})
    full = photo(tmp_path / "x.jpg", size=(300, 300)).read_bytes()
    broken = tmp_path / "Train" / "B" / "IMG_2.jpg"
    broken.parent.mkdir()
    broken.write_bytes(full[: len(full) // 2])
    ds = data.find_images(tmp_path)
    images = data.decode_split(ds.train, ds.classes, 32)
    with pytest.raises(DatasetError) as e:
        data.require_every_class(images.labels, ds.classes, "training", tmp_path, images.skipped, ds.train)
    assert str(e.value).startswith(f"no decodable image for class B in the training split of {tmp_path}: "
                                   f"{broken} does not decode (")
    assert str(e.value).endswith("): replace or remove it, or add JPEG/PNG photos")


@pytest.mark.slow  # a python -m train subprocess
def test_the_cli_names_a_class_s_training_files_that_do_not_decode(tmp_path):
    class_folders(tmp_path / "Train", {"A": 3})
    class_folders(tmp_path / "Validation", {"A": 1, "B": 1})
    broken = tmp_path / "Train" / "B" / "IMG_2.jpg"
    broken.parent.mkdir()
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    r = run_train("--data", tmp_path, "--weights", "none", "--out", tmp_path.parent / f"{tmp_path.name}-m")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{broken} does not decode (" in r.stderr and "replace or remove it" in r.stderr


def test_one_cat_s_folder_as_the_dataset_says_to_give_the_folder_above(tmp_path):
    # --data ../house/Mochi (a cat's folder) was told to put each cat's photos in ../house/Mochi/<name>/.
    mochi = class_folders(tmp_path / "house", {"Mochi": 3, "Tom": 2}) / "Mochi"
    with pytest.raises(DatasetError) as e:
        data.find_images(mochi)
    assert str(e.value) == (f"{mochi} holds 3 photos but no class folders: give --data the folder that holds one "
                            f"folder per cat (such as {mochi.parent}), or put each cat's photos in {mochi}/<name>/")


def test_a_class_of_many_photos_taken_in_few_moments_is_warned():
    # Chungdam's 50 photos are 5 bursts: nothing told the user that 50 photos can be five.
    from train.pipeline import few_moments

    labels = np.repeat([0, 1, 2], [50, 12, 6])
    group_of = np.concatenate([np.arange(50) // 10, 10 + np.arange(12), 30 + np.zeros(6, int)])
    [warning] = few_moments(("Chungdam", "Eve", "Tori"), labels, group_of)  # Tori: 6 photos, `thin` says so
    assert warning.startswith("class Chungdam: its 50 photos are only 5 different moments"), warning


def test_few_moments_counts_bursts_and_near_duplicates_as_one(tmp_path):
    from train import folds
    from train.pipeline import few_moments

    paths = [tmp_path / "Nabi" / f"1587034022066-{k}.jpg" for k in range(6)] + \
            [tmp_path / "Nabi" / f"IMG_{k}.jpg" for k in range(6)]
    rng = np.random.default_rng(0)
    one_scene = rng.normal(size=64)
    vectors = np.stack([rng.normal(size=64) for _ in range(6)] +  # a burst: one group whatever it shows
                       [one_scene + rng.normal(scale=0.05, size=64) for _ in range(6)])  # near-identical shots
    labels = np.zeros(12, int)
    group_of = folds.groups(paths, vectors, labels)
    assert len(np.unique(group_of)) == 2
    assert len(few_moments(("Nabi",), labels, group_of)) == 1
