"""mask_detector/data.py: the leak-free split and the augmentation."""

import numpy as np

from conftest import DATASET, require


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
