"""train_mask_detector.py end to end on a small real subset, and the leak-free split."""

import json
import re

import cv2
import numpy as np
import pytest

from conftest import DATASET, require, run_script
from mask_detector import CLASS_NAMES


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    output = folder / "models" / "small.h5"
    result = run_script(
        "train_mask_detector.py", "--dataset", require(DATASET / "observations"),
        "--max-per-class", 24, "--epochs", 1, "--fine-tune-epochs", 1, "--batch-size", 8,
        "--output", output, "--logdir", folder / "logs", "--seed", 7,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, output, folder


def test_writes_model_card_plot_and_keras_copy(trained):
    result, output, _ = trained
    assert {p.name for p in output.parent.iterdir()} == {
        "small.h5", "small.keras", "small.json", "small_training.png"
    }  # and no checkpoint or partial file left behind
    plot = cv2.imread(str(output.with_name("small_training.png")))
    assert plot is not None and plot.std() > 0
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["class_names"] == list(CLASS_NAMES)
    assert card["seed"] == 7 and card["input"]["size"] == [128, 128, 3]
    assert card["images"]["usable"] == 48
    assert card["images"]["train"] + card["images"]["validation"] + card["images"]["test"] <= 48
    assert "--max-per-class 24" in card["command"]
    assert 0.0 <= card["test_split"]["accuracy"] <= 1.0
    assert set(card["test_split"]) >= {"accuracy", "balanced_accuracy", "mask", "no_mask"}
    # The classification report and the per-epoch progress are printed.
    assert "precision" in result.stdout and "no_mask" in result.stdout
    assert re.search(r"^\d+/\d+ - \d+m?s - .*loss: [\d.]+ - val_accuracy", result.stdout, re.M), result.stdout


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_saved_model_is_self_contained(trained, suffix):
    import keras

    _, output, _ = trained
    model = keras.models.load_model(output.with_suffix(suffix))  # no custom objects needed
    assert tuple(model.input_shape) == (None, 128, 128, 3)
    assert tuple(model.output_shape) == (None, 2)
    faces = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3)).astype("float32")
    probabilities = np.asarray(model(faces))
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_tensorboard_logs_for_train_and_validation(trained):
    _, _, folder = trained
    (run,) = (folder / "logs").iterdir()
    for part in ("train", "validation"):
        events = list((run / part).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0, f"no {part} events in {run}"


def test_split_keeps_duplicates_on_one_side():
    from mask_detector.data import find_images, split_without_leaks

    images = find_images([require(DATASET / "observations")], warn=lambda message: None)
    train, validation, test, stats = split_without_leaks(images, seed=3)
    # The seed's dataset is known to hold about 97 extra copies of files.
    assert 80 <= stats["duplicates_dropped"] <= 120
    sides = [set(part.hashes) for part in (train, validation, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sum(len(s) for s in sides) == stats["unique"]
    # The same seed gives the same split.
    again = split_without_leaks(images, seed=3)[2]
    assert again.paths == test.paths


def test_augmentation_moves_every_image_differently_and_keeps_its_size():
    import tensorflow as tf

    from mask_detector.data import random_affine

    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (64, 1))
    photo = np.stack([ramp, ramp.T, 255 - ramp], axis=-1)  # no symmetry: any move shows
    batch = np.stack([photo] * 8)
    moved = random_affine(tf.constant(batch)).numpy()
    assert moved.shape == batch.shape and moved.dtype == np.float32
    assert all(np.abs(image - photo).mean() > 1 for image in moved)
    assert all(np.abs(moved[i] - moved[j]).mean() > 1 for i in range(8) for j in range(i))
    # Edges repeat the nearest pixel, so no black corners and no values out of range.
    assert moved.min() >= -1e-3 and moved.max() <= 255 + 1e-3  # bilinear sums round in float32
    flat = random_affine(tf.fill([4, 32, 32, 3], 90.0)).numpy()
    np.testing.assert_allclose(flat, 90.0, atol=1e-3)
