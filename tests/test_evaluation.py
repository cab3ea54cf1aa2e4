"""mask_detector/evaluation.py: VOC average precision, matching, and the summary of one photo."""

import numpy as np
import pytest

from mask_detector.evaluation import Annotation, Tally, average_precision, greedy_match, summary, tally_image
from mask_detector.labels import two_class
from mask_detector.pipeline import FaceResult


def test_average_precision_by_hand():
    # Ranked: hit, miss, hit; 3 true faces. Precision at the hits: 1 and 2/3; recall steps of 1/3.
    assert average_precision([0.9, 0.8, 0.7], [True, False, True], 3) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision([0.5, 0.9], [True, True], 2) == pytest.approx(1.0)
    assert average_precision([], [], 4) == 0.0
    assert np.isnan(average_precision([0.3], [False], 0))


def test_each_true_face_is_claimed_once_best_score_first():
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=np.float32)
    detected = [[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]]
    assert greedy_match(detected, [0.6, 0.9, 0.99], truth).tolist() == [-1, 0, -1]


def test_summary_of_one_photo():
    annotation = Annotation(
        image=None,
        boxes=np.array([[0, 0, 40, 40], [100, 0, 120, 20], [200, 0, 210, 10], [300, 0, 340, 40]], np.float32),
        labels=["mask", "no_mask", "no_mask", "incorrect"],
    )
    results = [
        FaceResult((0, 0, 40, 40), 0.9, two_class(0.8)),  # right: mask
        FaceResult((100, 0, 120, 20), 0.8, two_class(0.7)),  # wrong: called mask, is no_mask
        FaceResult((300, 0, 340, 40), 0.7, two_class(0.1)),  # mask worn incorrectly: not judged
        FaceResult((500, 500, 540, 540), 0.6, two_class(0.2)),  # nothing there
    ]
    tally = Tally()
    tally_image(tally, annotation, results, crop_probabilities=np.array([0.9, 0.2, 0.5, 0.5]))
    figures = summary(tally)
    assert figures["face_recall"][">=32"] == {"faces": 2, "recall": 1.0}
    assert figures["face_recall"]["16-32"] == {"faces": 1, "recall": 1.0}
    assert figures["face_recall"]["<16"] == {"faces": 1, "recall": 0.0}
    assert figures["ap_all"]["mask"] == pytest.approx(1.0)
    # no_mask ranking: stray (0.48, wrong), no_mask face (0.24, right), mask face (0.18, wrong); 2 true.
    assert figures["ap_all"]["no_mask"] == pytest.approx(0.5 * 0.5)
    assert figures["matched_all"]["accuracy"] == 0.5
    # Crops of the true boxes >= 24 px with a clear label: only the first face.
    assert figures["classifier_on_truth_boxes"]["count"] == 1


def test_three_class_figures_of_one_photo():
    annotation = Annotation(
        image=None,
        boxes=np.array([[0, 0, 40, 40], [100, 0, 140, 40], [200, 0, 240, 40], [300, 0, 320, 20]], np.float32),
        labels=["mask", "no_mask", "incorrect", "incorrect"],
    )

    def result(box, mask, no_mask, incorrect):
        return FaceResult(box, 1.0, {"mask": mask, "no_mask": no_mask, "incorrect": incorrect})

    results = [
        result((0, 0, 40, 40), 0.8, 0.1, 0.1),  # right
        result((100, 0, 140, 40), 0.1, 0.3, 0.6),  # called incorrect, is no_mask: a violation either way
        result((200, 0, 240, 40), 0.2, 0.1, 0.7),  # right
        result((300, 0, 320, 20), 0.75, 0.2, 0.05),  # called mask, is incorrect: a missed violation
    ]
    tally = Tally()
    tally_image(tally, annotation, results)
    figures = summary(tally)
    # incorrect ranking: 0.7 (right), 0.6 (wrong), 0.1 (wrong, the mask face), 0.05 (right); 2 true.
    assert figures["ap3_all"]["incorrect"] == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 4)
    assert figures["ap3_all"]["mask"] == pytest.approx(1.0)
    assert figures["confusion_all"]["no_mask"] == {"mask": 0, "no_mask": 0, "incorrect": 1}
    assert figures["confusion_all"]["incorrect"] == {"mask": 1, "no_mask": 0, "incorrect": 1}
    violation = figures["violation_all"]
    assert (violation["violation_precision"], violation["violation_recall"]) == (1.0, pytest.approx(2 / 3))
    assert figures["violation_>=32"]["violation_recall"] == 1.0  # the missed one is under 32 px
    # The two-class figures leave the faces with a mask worn wrongly out.
    assert figures["matched_all"]["count"] == 2
