"""Shared helpers: run the real scripts in a subprocess, find the real data.

The tests need the set-up step to have run (`make test` does it): the
detector files in face_detector/, the datasets in dataset/, the annotated
photos in evaluation/ and the sample photos in samples/.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
DATASET = ROOT / "dataset"
VOC_DEV = ROOT / "evaluation" / "facemask_voc_dev"
DEFAULT_MODEL = ROOT / "models" / "mask_detector.h5"


def script_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # No test may reach the network: downloads go to a closed port and fail at once.
    env["HTTPS_PROXY"] = env["https_proxy"] = "http://127.0.0.1:9"
    env.pop("DISPLAY", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_script(script, *args, timeout=600, env=None, python=sys.executable, cwd=ROOT):
    """Run one of the project's scripts with the given arguments; return the CompletedProcess."""
    command = [python, str(ROOT / script), *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, env=env or script_env(), capture_output=True, text=True, timeout=timeout
    )


def run_module(module, *args, timeout=300, env=None):
    """Run ``python -m module`` from the project root; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT, env=env or script_env(), capture_output=True, text=True, timeout=timeout,
    )


def match_to_truth(boxes, truth_boxes, least_iou=0.3):
    """For each true box, the index of the detected box that overlaps it most (IoU >= least_iou), or -1.

    A loose IoU, because detectors and annotators frame a face differently
    (forehead, chin, ears); this asks whether a face was found, not how tightly.
    """
    import numpy as np

    from mask_detector.evaluation import iou_matrix

    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.full(len(truth_boxes), -1)
    overlaps = iou_matrix(boxes, truth_boxes)
    best = overlaps.argmax(axis=0)
    return np.where(overlaps.max(axis=0) >= least_iou, best, -1)


def require(path):
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: run the set-up step (`make setup`) first")
    return Path(path)


@pytest.fixture(scope="session")
def samples():
    paths = sorted(require(SAMPLES).glob("*.jpg"))
    assert paths, "no sample photos"
    return paths


@pytest.fixture(scope="session")
def default_model():
    return require(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def voc_dev():
    return require(VOC_DEV)
