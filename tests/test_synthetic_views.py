"""mask_detector/synthetic/views.py: a turned face carries its landmarks along, a close-up is cut as asked."""

import cv2
import numpy as np
import pytest

from mask_detector.synthetic.geometry import face_axes
from mask_detector.synthetic.views import cut_close_up, face_box, turn_head
from synthetic_faces import FACE


def test_a_turned_face_carries_its_landmarks_with_its_pixels():
    """Dots drawn at the five points are found where turn_head says the points went."""
    image = np.full((300, 300, 3), 128, np.uint8)
    for x, y in FACE:
        cv2.circle(image, (int(x), int(y)), 3, (0, 0, 255), -1)
    same, points = turn_head(image, FACE, 0.0, 0.0)
    assert np.array_equal(same, image) and np.allclose(points, FACE)
    for yaw, pitch in ((25.0, 0.0), (-30.0, 10.0), (15.0, -12.0)):
        turned, points = turn_head(image, FACE, yaw, pitch)
        for x, y in points:
            patch = turned[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3]
            assert (patch[..., 2] > 200).any(), (yaw, pitch, x, y)
        axes = face_axes(points)
        # Turned to the image's right, the nose moves right of the eyes' midpoint, and the near half
        # of the face (the left of the picture) widens.
        assert np.sign(axes.nose[0] - face_axes(FACE).nose[0]) == np.sign(yaw)


def test_a_close_up_is_cut_by_the_share_asked():
    image = np.zeros((300, 300, 3), np.uint8)
    x1, y1, x2, y2 = face_box(FACE)
    cut, points = cut_close_up(image, FACE, "top", 0.25)
    assert cut.shape[0] == 300 - int(y1 + 0.25 * (y2 - y1)) and np.allclose(points[:, 0], FACE[:, 0])
    cut, points = cut_close_up(image, FACE, "right", 0.2)
    assert cut.shape[1] == int(x2 - 0.2 * (x2 - x1)) and np.allclose(points, FACE)
    with pytest.raises(ValueError):
        cut_close_up(image, FACE, "bottom", 0.2)
