"""Both face detectors on real photos, on OpenCV 5 (the main environment) and OpenCV 4 (.venv-opencv4)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from support.media import match_to_truth
from support.scripts import ROOT, VOC_DEV, require, script_env
from mask_detector.boxes import iou_matrix
from mask_detector.evaluation import load_voc

OPENCV4_PYTHON = ROOT / ".venv-opencv4" / "bin" / "python"
# Least share of the samples' annotated faces of 32 px or more that each detector must find.
LEAST_RECALL = {"yunet": 0.75, "ssd": 0.5, "ssd-caffe": 0.5}


def detect(python, detector, photos):
    result = subprocess.run(
        [str(python), str(ROOT / "tests" / "detect_faces_json.py"), detector, *map(str, photos)],
        cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def recall_of_large_faces(faces, photos):
    truth = {a.image.name: a for a in load_voc(require(VOC_DEV))}
    large = found = 0
    for photo in photos:
        annotation = truth[photo.name]
        rows = np.array(faces[photo.name], dtype=np.float32).reshape(-1, 5)
        matched = match_to_truth(rows[:, :4], annotation.boxes)
        large += int((annotation.sizes >= 32).sum())
        found += int((matched[annotation.sizes >= 32] >= 0).sum())
    return found / large


@pytest.fixture(scope="module")
def opencv4_python():
    if not OPENCV4_PYTHON.is_file():
        pytest.fail("the OpenCV 4 environment is missing: `make test` creates .venv-opencv4")
    return OPENCV4_PYTHON


@pytest.mark.parametrize("detector", ["yunet", "ssd"])
def test_detector_on_opencv5(detector, samples):
    output = detect(sys.executable, detector, samples)
    assert output["opencv"].startswith("5.")
    assert recall_of_large_faces(output["faces"], samples) >= LEAST_RECALL[detector]


def test_caffe_ssd_is_refused_clearly_on_opencv5(samples):
    output = detect(sys.executable, "ssd-caffe", samples[:1])
    assert output["error"].startswith("OpenCV 5.") and "use --detector ssd" in output["error"]


@pytest.mark.parametrize("detector", ["yunet", "ssd", "ssd-caffe"])
def test_detector_on_opencv4(detector, samples, opencv4_python):
    output = detect(opencv4_python, detector, samples)
    assert output["opencv"].startswith("4.")
    assert recall_of_large_faces(output["faces"], samples) >= LEAST_RECALL[detector]


def test_ssd_finds_the_same_faces_on_both_majors(samples, opencv4_python):
    on5 = detect(sys.executable, "ssd", samples)["faces"]
    on4 = detect(opencv4_python, "ssd", samples)["faces"]
    for photo in samples:
        a = np.array(on5[photo.name], dtype=np.float32).reshape(-1, 5)
        b = np.array(on4[photo.name], dtype=np.float32).reshape(-1, 5)
        assert len(a) == len(b), photo.name
        if len(a):
            assert iou_matrix(a[:, :4], b[:, :4]).max(axis=1).min() > 0.9
