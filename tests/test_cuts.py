"""Shot cuts restart smoothing: the detector on frames, and the loop's label after a cut."""
from __future__ import annotations

import dataclasses
import io
import json

import cv2
import numpy as np
import pytest

from clips import noise_frame, write_clip
from knyang_cam import app, config, model_dir
from knyang_cam.cuts import CutDetector
from knyang_cam.sources import VideoFile
from tests.conftest import make_colour_model_dir


def scene(seed, width=640, height=480):
    """A picture with photo-like large structure (fine noise averages away in a thumbnail)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def test_same_shot_is_not_a_cut_and_a_new_scene_is():
    detect = CutDetector(25)
    first = scene(1)
    assert not detect(first)  # the first frame has nothing to differ from
    assert not detect(first)
    assert not detect(np.roll(first, 6, axis=1)), "a small pan is one shot"
    assert not detect(cv2.convertScaleAbs(np.roll(first, 6, axis=1), alpha=1.0, beta=60)), \
        "a brightness change (a lamp switched on) is one shot"
    assert detect(scene(2))
    assert not detect(scene(2))


def test_threshold_zero_turns_it_off():
    detect = CutDetector(0)
    assert not any(detect(noise_frame(i)) for i in range(5))
    with pytest.raises(ValueError):
        CutDetector(-1)


def tinted(colour_bgr, seed):
    """A textured frame of one dominant colour: texture makes cuts visible, colour names the cat."""
    return (0.5 * np.array(colour_bgr, np.float32) + 0.5 * scene(seed, 160, 120)).astype(np.uint8)


@pytest.mark.slow  # a Keras-built model
@pytest.mark.parametrize("cut_threshold, first_new_label", [(25.0, "Gamma"), (0.0, "Alpha")])
def test_the_label_follows_a_cut_at_once(tmp_path, cut_threshold, first_new_label):
    model = model_dir.read(make_colour_model_dir(tmp_path / "colour"))
    red, blue = (30, 30, 220), (220, 30, 30)
    clip = write_clip(tmp_path / "cut.mp4", [tinted(red, 1)] * 10 + [tinted(blue, 2)] * 10, 10.0)
    base = config.load()
    cfg = dataclasses.replace(base, smoothing=dataclasses.replace(base.smoothing, cut_threshold=cut_threshold),
                              regions=dataclasses.replace(base.regions, crop="center"),  # tinted frames: no cat
                              app=dataclasses.replace(base.app, dataset_root=str(tmp_path / "data")))
    log = tmp_path / "log.jsonl"
    app.run(cfg, VideoFile(clip), model, log=str(log), out=io.StringIO())
    labels = [json.loads(line)["regions"][0]["label"] for line in log.read_text().splitlines()]
    assert labels[:10] == ["Alpha"] * 10
    # With cut detection the first frame after the cut is named; without, the old name lingers.
    assert labels[10] == first_new_label
    assert labels[-1] == "Gamma"
