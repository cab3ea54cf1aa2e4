"""Face-mask detection: face detectors, a mask classifier and their tools.

What every module agrees on is set here, once.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The trained classifier the scripts load when no --model is given.
DEFAULT_MODEL = PROJECT_ROOT / "models" / "mask_detector.h5"
# Its LiteRT float16 copy (made by set-up): the same answers, several times faster per face on a CPU.
FAST_MODEL = DEFAULT_MODEL.with_name("mask_detector_float16.tflite")

CLASS_NAMES = ("mask", "no_mask")
# A face is called `mask` when the classifier gives `mask` at least this probability.
MASK_THRESHOLD = 0.5


def label_of(mask_probability):
    """The label a face gets for its probability of `mask`."""
    return "mask" if mask_probability >= MASK_THRESHOLD else "no_mask"
