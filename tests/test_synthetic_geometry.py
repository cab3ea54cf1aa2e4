"""mask_detector/synthetic/geometry.py: where masks sit on a face, whatever its roll, and the face's own axes."""

import cv2
import numpy as np
import pytest

from mask_detector.synthetic.geometry import PLACEMENTS, landmark_problem, mask_geometry, mask_outline
from mask_detector.synthetic.masks import SHAPES
from synthetic_faces import FACE

SEEDS = range(40)


def turned(points, degrees, about=(130.0, 140.0)):
    """The points rolled by ``degrees`` about ``about``, as a head tilted to one side."""
    matrix = cv2.getRotationMatrix2D(about, degrees, 1.0)
    return np.hstack([points, np.ones((len(points), 1))]) @ matrix.T


def inside(polygon, point):
    """Signed distance from ``point`` to the polygon's edge: positive inside."""
    return cv2.pointPolygonTest(polygon.astype(np.float32), tuple(map(float, point)), True)


def chin(landmarks):
    mouth = landmarks[3:].mean(axis=0)
    return mouth + (mouth - landmarks[:2].mean(axis=0)) * 0.6


@pytest.mark.parametrize("roll", [0, 25, -35])
@pytest.mark.parametrize("shape", SHAPES)
def test_each_placement_covers_what_it_should(shape, roll):
    landmarks = turned(FACE, roll)
    nose, mouth_corners = landmarks[2], landmarks[3:]
    for seed in SEEDS:  # the random shifts of the edges never break a placement
        rng = np.random.default_rng(seed)
        outline = {p: mask_outline(mask_geometry(landmarks, p, rng), shape) for p in PLACEMENTS}
        assert inside(outline["correct"], nose) > 3
        assert all(inside(outline["correct"], corner) > 3 for corner in mouth_corners)
        assert all(inside(outline["correct"], eye) < -5 for eye in landmarks[:2])
        assert inside(outline["below_nose"], nose) < -3
        assert all(inside(outline["below_nose"], corner) > 0 for corner in mouth_corners)
        for placement in ("mouth_uncovered", "on_chin"):
            assert all(inside(outline[placement], corner) < 0 for corner in mouth_corners)
        # Every placement covers the chin.
        assert all(inside(polygon, chin(landmarks)) > 0 for polygon in outline.values())


def test_the_mask_rolls_with_the_head():
    for placement in PLACEMENTS:
        upright = mask_outline(mask_geometry(FACE, placement), "kn95")
        rolled = mask_outline(mask_geometry(turned(FACE, 30), placement), "kn95")
        np.testing.assert_allclose(rolled, turned(upright, 30), atol=1e-6)


def test_mask_coordinates_go_there_and_back():
    geometry = mask_geometry(turned(FACE + [[0, 0], [0, 0], [12, 0], [8, 0], [8, 0]], 10), "correct")
    s, t = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-0.1, 1.1, 7))
    back = geometry.to_mask(geometry.to_image(s, t))
    np.testing.assert_allclose(back[0], s, atol=1e-9)
    np.testing.assert_allclose(back[1], t, atol=1e-9)


def test_faces_a_mask_cannot_be_fitted_to_are_named():
    assert landmark_problem(FACE) is None
    assert landmark_problem(FACE / 10) == "face too small"
    profile = FACE + [[0, 0], [0, 0], [40, 0], [30, 0], [30, 0]]
    assert landmark_problem(profile) == "face turned to the side"
    upside_down = FACE * [1, -1]
    assert landmark_problem(upside_down) == "landmarks out of place"
