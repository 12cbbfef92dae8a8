"""Where the benches find ../shared (the dataset, the Oxford pets and the offline backbone), named once."""
from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
KNYANG = SHARED / "data" / "knyang"
VALIDATION = KNYANG / "Validation"
PETS = SHARED / "data" / "oxford_pets"
WEIGHTS_DIR = SHARED / "weights"
WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_1.0_160_no_top.weights.h5"
