"""Face-mask detection: face detectors, a mask classifier and their tools.

What every module agrees on is set here, once.
"""

import os
from pathlib import Path

from mask_detector.quiet import silence_libraries

# Before any module loads OpenCV, TensorFlow or Qt, which read their log settings then.
silence_libraries()


def _project_root():
    """Where models/, face_detector/ and the data are: the clone the package lives in (run from it, or
    installed with `pip install -e .`); else $MASK_DETECTOR_HOME, else the current folder (`pip install .`)."""
    clone = Path(__file__).resolve().parent.parent
    if os.environ.get("MASK_DETECTOR_HOME"):
        return Path(os.environ["MASK_DETECTOR_HOME"]).resolve()
    return clone if (clone / "models").is_dir() else Path.cwd()


PROJECT_ROOT = _project_root()
# The trained classifier the scripts load when no --model is given.
DEFAULT_MODEL = PROJECT_ROOT / "models" / "mask_detector.h5"
# Its LiteRT float16 copy (made by set-up): the same answers, several times faster per face on a CPU.
FAST_MODEL = DEFAULT_MODEL.with_name("mask_detector_float16.tflite")
# The face detectors' files (set-up fetches them: assets.py).
FACE_DETECTOR_DIR = PROJECT_ROOT / "face_detector"
# Training data, for training and for calibrating int8 exports.
DEFAULT_DATASET = PROJECT_ROOT / "dataset"


def plural(count, noun):
    """`1 face`, `2 faces`: a count with its noun, in the right number."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
