"""Face-mask detection: face detectors, a mask classifier and their tools.

What every module agrees on is set here, once.
"""

import os
import sys
from pathlib import Path

from mask_detector.quiet import silence_libraries

# Before any module loads OpenCV, TensorFlow or Qt, which read their log settings then.
silence_libraries()


def user_data_folder():
    """Where an installed command keeps its models and data: $XDG_DATA_HOME/mask-detector, by default
    ~/.local/share/mask-detector (`mask-detector fetch` fills it)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mask-detector"


def _project_root():
    """Where models/, face_detector/ and the data are: $MASK_DETECTOR_HOME when set; else the clone the
    package lives in (run from it, or installed with `pip install -e .`); else, for a package installed with
    `pip install .`, the user's data folder."""
    clone = Path(__file__).resolve().parent.parent
    if os.environ.get("MASK_DETECTOR_HOME"):
        return Path(os.environ["MASK_DETECTOR_HOME"]).resolve()
    return clone if (clone / "models").is_dir() else user_data_folder()


PROJECT_ROOT = _project_root()
# The trained classifier the scripts load when no --model is given.
DEFAULT_MODEL = PROJECT_ROOT / "models" / "mask_detector.h5"
# Its LiteRT float16 copy (made by set-up): the same answers, several times faster per face on a CPU.
FAST_MODEL = DEFAULT_MODEL.with_name("mask_detector_float16.tflite")
# The face detectors' files (set-up fetches them: assets.py).
FACE_DETECTOR_DIR = PROJECT_ROOT / "face_detector"
# The shipped model as `pip install .` installs it beside the package (pyproject.toml's data-files), for
# `mask-detector fetch` to copy into PROJECT_ROOT.
SHIPPED_MODELS = Path(sys.prefix) / "share" / "face-mask-detector" / "models"
# The command that fetches every file the scripts need into PROJECT_ROOT, as the messages name it.
FETCH_COMMAND = "mask-detector fetch"
# Training data, for training and for calibrating int8 exports.
DEFAULT_DATASET = PROJECT_ROOT / "dataset"


def installed_version():
    """The installed package's version, or None when it runs from a clone that was never installed."""
    from importlib import metadata

    try:
        return metadata.version("face-mask-detector")
    except metadata.PackageNotFoundError:
        return None


def plural(count, noun):
    """`1 face`, `2 faces`: a count with its noun, in the right number."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
