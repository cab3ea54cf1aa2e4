"""mask_detector/classifier.py: face crops, and model files that are missing, damaged or unsuitable."""

import numpy as np
import pytest

from conftest import assert_one_line_error


def test_box_with_nothing_inside_gives_no_crop():
    from mask_detector.classifier import crop_faces

    image = np.zeros((40, 60, 3), np.uint8)
    boxes = [(10, 10, 10, 30), (20, 5, 15, 30), (-30, -30, -1, -1), (70, 0, 90, 10), (0, 35, 60, 90), (59, 39, 60, 40)]
    crops = crop_faces(image, boxes, 16)
    assert crops[:4] == [None, None, None, None]
    assert crops[4].shape == crops[5].shape == (16, 16, 3)  # cut by the border, or a single pixel


def test_missing_model_file_says_how_to_get_one(model_runs):
    line = assert_one_line_error(model_runs["missing.h5"], "missing.h5 not found")
    assert "python train_mask_detector.py --dataset dataset" in line and "--model PATH" in line


@pytest.mark.parametrize("name", ["random.h5", "truncated.h5", "junk.keras"])
def test_corrupt_model_file(model_runs, name):
    assert_one_line_error(model_runs[name], "cannot load model", f"{name} (damaged or not a Keras model)")
    assert model_runs[name].stdout == ""  # no image was processed with it


def test_model_with_unexpected_input_shape(model_runs):
    assert_one_line_error(model_runs["grey_input.keras"], "takes input of shape (None, 64, 64, 1)", "(batch, N, N, 3)")


def test_model_with_unexpected_output_shape(model_runs):
    assert_one_line_error(model_runs["three_classes.keras"], "gives output of shape (None, 3)", "expected (batch, 2)")


def test_model_with_python_code_is_refused_by_safe_mode(model_runs):
    assert_one_line_error(model_runs["lambda.keras"], "holds Python code (a Lambda layer) and is refused")
    assert not model_runs["marker"].exists(), "the model's code ran"
