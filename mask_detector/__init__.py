"""Face-mask detection: face detectors, a mask classifier and their tools.

What every module agrees on is set here, once.
"""

from pathlib import Path

from mask_detector.quiet import silence_libraries

# Before any module loads OpenCV, TensorFlow or Qt, which read their log settings then.
silence_libraries()

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The trained classifier the scripts load when no --model is given.
DEFAULT_MODEL = PROJECT_ROOT / "models" / "mask_detector.h5"
# Its LiteRT float16 copy (made by set-up): the same answers, several times faster per face on a CPU.
FAST_MODEL = DEFAULT_MODEL.with_name("mask_detector_float16.tflite")
# Training data, for training and for calibrating int8 exports.
DEFAULT_DATASET = PROJECT_ROOT / "dataset"


def plural(count, noun):
    """`1 face`, `2 faces`: a count with its noun, in the right number."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
