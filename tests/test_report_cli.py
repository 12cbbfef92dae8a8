"""`--report DIR` end to end: a generated clip with known appearances, through the real CLI.

The model (conftest.make_colour_model_dir) names the picture's dominant colour, so a
clip of red, grey and blue stretches has known appearances, and the report must
show exactly them.
"""
from __future__ import annotations

import csv
import subprocess
import sys

import cv2
import numpy as np
import pytest

from clips import write_clip
from tests.conftest import ROOT, make_colour_model_dir

pytestmark = pytest.mark.slow  # builds a Keras model and runs python -m knyang_cam as a subprocess

FPS = 10.0
# (BGR colour, seconds): red 2 s, grey 1 s (all channels equal: no cat -> unknown), blue 2 s.
SEGMENTS = [((30, 30, 220), 2.0), ((128, 128, 128), 1.0), ((220, 30, 30), 2.0)]


def test_report_matches_a_clip_with_known_appearances(tmp_path):
    model = make_colour_model_dir(tmp_path / "colour")
    frames = [np.full((120, 160, 3), colour, np.uint8)
              for colour, seconds in SEGMENTS for _ in range(int(seconds * FPS))]
    clip = write_clip(tmp_path / "clip.mp4", frames, FPS)
    config = tmp_path / "config.yaml"
    # The centre square (coloured frames: no cat to find). No smoothing lag, so the appearances start and end
    # on the segment boundaries (views in turn would let a sure view linger for up to regions.zooms - 1 frames).
    config.write_text("smoothing:\n  alpha: 1.0\n  hold: 1\nregions:\n  crop: center\n  views_in_turn: false\n")
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "knyang_cam", "--source", str(clip), "--model", str(model),
                           "--config", str(config), "--headless", "--report", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

    with open(report / "appearances.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["cat"], float(r["start_s"]), float(r["end_s"]), int(r["frames"])) for r in rows] == [
        ("Alpha", 0.0, 2.0, 20), ("Gamma", 3.0, 5.0, 20)]
    assert all(float(r["mean_confidence"]) > 0.9 for r in rows)
    for name in ("timeline.png", "least_confident.png"):
        image = cv2.imread(str(report / name))
        assert image is not None and image.size > 0, name
    # The summary's time on screen agrees: 2 s of each cat, 1 s unknown.
    assert "Alpha 2.0 s" in proc.stdout and "Gamma 2.0 s" in proc.stdout and "unknown 1.0 s" in proc.stdout
