"""Other views of the same face: leaning to one side, cut by the picture's edge (turned in 3-D: head.py).

The source photos are almost all frontal and upright, while real cameras
see heads on one side and faces cut by the frame.
"""

import cv2
import numpy as np

from mask_detector.synthetic.geometry import FACE_HALF_WIDTH, face_axes

def tilt_head(image, landmarks, degrees):
    """A copy of ``image`` turned ``degrees`` clockwise about the face's centre (a head leaning on one
    side), and the landmarks with it; mirrored at the border, as a tight crop has nothing beyond it."""
    centre = np.asarray(landmarks, np.float64).reshape(5, 2).mean(axis=0)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), -degrees, 1.0)
    height, width = image.shape[:2]
    turned = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT_101)
    points = np.asarray(landmarks, np.float64).reshape(5, 2) @ matrix[:, :2].T + matrix[:, 2]
    return turned, points


def face_box(landmarks):
    """The face's box (x1, y1, x2, y2), brows to chin and cheek to cheek, estimated from five landmarks."""
    axes = face_axes(landmarks)
    corners = axes.to_image([-FACE_HALF_WIDTH, FACE_HALF_WIDTH] * 2, [-0.6, -0.6, axes.chin, axes.chin])
    return (*corners.min(axis=0), *corners.max(axis=0))


def cut_close_up(image, landmarks, side, share):
    """The image cut on ``side`` (top, left or right) so that ``share`` of the face's box falls outside,
    as a camera close to a door cuts a face; the landmarks moved with the cut."""
    x1, y1, x2, y2 = face_box(landmarks)
    points = np.asarray(landmarks, np.float64).reshape(5, 2).copy()
    height, width = image.shape[:2]
    if side == "top":
        edge = int(np.clip(y1 + share * (y2 - y1), 0, height - 1))
        points[:, 1] -= edge
        return image[edge:], points
    if side == "left":
        edge = int(np.clip(x1 + share * (x2 - x1), 0, width - 1))
        points[:, 0] -= edge
        return image[:, edge:], points
    if side == "right":
        edge = int(np.clip(x2 - share * (x2 - x1), 1, width))
        return image[:, :edge], points
    raise ValueError(f"unknown side {side!r}; choose top, left or right")


def upright(landmarks, most_roll=0.25):
    """Whether the face's eye line is near level: other views start from an upright face."""
    return abs(face_axes(landmarks).x_axis[1]) <= most_roll
