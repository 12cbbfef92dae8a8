"""Does the model say "unknown" for scenes without a cat?

    python bench/unknown_threshold.py [--model models/knyang]

The bundled model on crops of a portrait photo (Matplotlib's sample) and of flat, noisy
and striped pictures: the share called "unknown", and the highest top probability.
Strangers (other cats, dogs, leave one cat out) and the known cats at the same cut are
measured by bench/quality.py, cross-validated.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from knyang_cam import model_dir  # noqa: E402
from knyang_cam.classify import load_classifier  # noqa: E402


def no_cat_crops(size: int) -> np.ndarray:
    """Square crops of scenes without a cat, at the classifier's size."""
    import cv2
    import matplotlib.cbook

    photo = cv2.cvtColor(cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
                         cv2.COLOR_BGR2RGB)
    h, w = photo.shape[:2]
    crops = []
    for scale in (1.0, 0.8, 0.6):
        side = int(min(h, w) * scale)
        for fx, fy in ((0.5, 0.5), (0, 0), (1, 0), (0, 1), (1, 1)):
            x, y = int((w - side) * fx), int((h - side) * fy)
            crops.append(cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(0)
    crops += [np.full((size, size, 3), v, np.uint8) for v in (0, 128, 255)]
    crops += [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(3)]
    crops += [np.tile(((np.arange(size) // p) % 2 * 255).astype(np.uint8)[None, :, None], (size, 1, 3))
              for p in (4, 10, 20)]
    return np.stack(crops)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "models" / "knyang")
    args = p.parse_args(argv)
    info = model_dir.read(args.model)
    crops = no_cat_crops(info.input_size[0])
    top = load_classifier(info, "litert", 2).predict(crops).max(axis=1)
    print(f"no cat ({len(crops)} crops: a portrait photo, flat, noise, stripes), {info.path}: "
          f"{np.mean(top < info.unknown_threshold):.3f} called unknown (threshold {info.unknown_threshold}, "
          f"highest top probability {top.max():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
