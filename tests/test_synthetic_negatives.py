"""mask_detector/synthetic/negatives.py: not-masks stay off the eyes, hands are skin-coloured, what shows is chosen."""

import numpy as np
import pytest

from mask_detector.synthetic.geometry import INCORRECT_PLACEMENTS, PLACEMENTS
from mask_detector.synthetic.masks import draw_mask, random_style
from mask_detector.synthetic.negatives import (
    NEGATIVES, choose_fitting, draw_hand, draw_negative, fitting_kinds, skin_colour, visible_share,
)
from synthetic_faces import FACE, load_real_face


@pytest.fixture(scope="module")
def real_face():
    return load_real_face()


def test_hard_negatives_stay_off_the_eyes(real_face):
    image, landmarks = real_face
    scale = float(np.hypot(*(landmarks[1] - landmarks[0])))
    radius = round(0.2 * scale)
    for seed in range(12):
        for kind in NEGATIVES:
            drawn, drawn_kind = draw_negative(image, landmarks, np.random.default_rng(seed), kind)
            assert drawn_kind == kind and drawn.shape == image.shape
            assert np.abs(drawn.astype(int) - image.astype(int)).max() > 30  # something was drawn
            for x, y in np.round(landmarks[:2]).astype(int):
                eye = (slice(y - radius, y + radius), slice(x - radius, x + radius))
                assert np.array_equal(drawn[eye], image[eye]), (kind, seed)


def test_only_what_shows_in_the_photo_is_chosen():
    roomy, tight = (320, 260, 3), (200, 260, 3)  # the tight crop ends a little below the mouth
    assert fitting_kinds(roomy, FACE, PLACEMENTS + NEGATIVES) == list(
        PLACEMENTS + NEGATIVES)
    assert fitting_kinds(tight, FACE, PLACEMENTS) == ["correct", "below_nose"]
    rng = np.random.default_rng(0)
    assert {choose_fitting(rng, INCORRECT_PLACEMENTS, tight, FACE) for _ in range(20)} == {
        "below_nose"}
    assert choose_fitting(rng, ("on_chin",), tight, FACE) is None
    square = np.array([[-10, 0], [10, 0], [10, 20], [-10, 20]], float)
    assert visible_share((100, 100, 3), square) == pytest.approx(0.5, abs=0.06)


def test_a_hand_on_a_mask_takes_the_skin_colour_given(real_face):
    image, landmarks = real_face
    rng = np.random.default_rng(0)
    masked = draw_mask(image, landmarks, random_style(rng, dark=True), "correct", rng)
    skin = skin_colour(image, landmarks)
    assert skin_colour(masked, landmarks).mean() < skin.mean() - 40  # the cheeks are now a dark mask
    touched = draw_hand(masked, landmarks, np.random.default_rng(1), skin=skin)
    changed = np.abs(touched.astype(int) - masked.astype(int)).sum(axis=2) > 60
    assert changed.any()
    hand = np.median(touched[changed], axis=0)
    assert np.abs(hand - skin).max() < 60, (hand, skin)  # the hand is skin-coloured, not mask-coloured
