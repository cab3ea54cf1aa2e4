"""mask_detector/synthetic/views.py: a tilted head carries its landmarks along, a close-up is cut as asked."""

import cv2
import numpy as np
import pytest

from mask_detector.synthetic.views import cut_close_up, face_box, tilt_head
from synthetic_faces import FACE


def test_a_tilted_head_carries_its_landmarks_with_its_pixels():
    """Dots drawn at the five points are found where tilt_head says the points went, and the eye line
    turns by the angle asked."""
    image = np.full((300, 300, 3), 128, np.uint8)
    for x, y in FACE:
        cv2.circle(image, (int(x), int(y)), 3, (0, 0, 255), -1)
    for degrees in (25.0, -40.0):
        tilted, points = tilt_head(image, FACE, degrees)
        for x, y in points:
            patch = tilted[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3]
            assert (patch[..., 2] > 200).any(), (degrees, x, y)
        eye_line = points[1] - points[0]
        assert np.degrees(np.arctan2(eye_line[1], eye_line[0])) == pytest.approx(degrees, abs=0.5)


def test_a_close_up_is_cut_by_the_share_asked():
    image = np.zeros((300, 300, 3), np.uint8)
    x1, y1, x2, y2 = face_box(FACE)
    cut, points = cut_close_up(image, FACE, "top", 0.25)
    assert cut.shape[0] == 300 - int(y1 + 0.25 * (y2 - y1)) and np.allclose(points[:, 0], FACE[:, 0])
    cut, points = cut_close_up(image, FACE, "right", 0.2)
    assert cut.shape[1] == int(x2 - 0.2 * (x2 - x1)) and np.allclose(points, FACE)
    with pytest.raises(ValueError):
        cut_close_up(image, FACE, "bottom", 0.2)
