"""Other views of the same face: turned, seen from above or below, cut by the picture's edge.

The source photos are almost all frontal (95 % turn the nose less than 0.3
eye distances off the eyes' midpoint), while real cameras see faces from
every side. A face is turned after its mask is drawn, so the mask bends
round the cheek with the skin under it.
"""

import math

import cv2
import numpy as np

from mask_detector.synthetic.geometry import FACE_HALF_WIDTH, face_axes

# The head as a cylinder seen from afar: its radius across, in eye distances (a little more than
# the cheeks' half width), and its radius from top to bottom, in brow-to-chin distances.
HEAD_RADIUS = 1.2
HEAD_HEIGHT_RADIUS = 1.5
MAX_YAW = 30.0  # degrees; further round, YuNet often misses the face or places the far eye wrongly
MAX_PITCH = 12.0


def _turned_axis(positions, centre, radius, degrees):
    """Where points on a cylinder of ``radius`` about ``centre`` show after it turns by ``degrees``.

    Seen from afar, a point at angle a from the front shows at centre +
    radius sin(a); turning adds to a. Outside the cylinder nothing moves,
    and a band at its edge blends the two, so the background stays put.
    """
    offset = np.clip((positions - centre) / radius, -1.0, 1.0)
    # Past the far edge the angle is not clipped: the sine turns back, so the strip of head that
    # comes into view mirrors its neighbour instead of repeating one column of pixels.
    moved = centre + radius * np.sin(np.arcsin(offset) + math.radians(degrees))
    weight = np.clip((1.0 - np.abs(positions - centre) / radius) / 0.2, 0.0, 1.0)
    return positions + weight * (moved - positions)


def turn_head(image, landmarks, yaw=0.0, pitch=0.0):
    """A copy of ``image`` with the face turned ``yaw`` degrees to the image's right and ``pitch`` down,
    and the landmarks moved with it.

    The face must be upright (little roll): the warp is along the image's
    axes. Pixels are looked up from where each one came from, so the
    near cheek widens and the far one narrows as in a photo of a turned head.
    """
    axes = face_axes(landmarks)
    height, width = image.shape[:2]
    centre_x = axes.to_image(axes.outline_centre, 0.0)[0]
    centre_y = axes.to_image(0.0, axes.chin / 2)[1]
    radius_x, radius_y = HEAD_RADIUS * axes.scale, HEAD_HEIGHT_RADIUS * axes.scale * max(axes.chin / 2, 0.5)
    # The inverse map: each output pixel's source is found by turning back.
    map_x = _turned_axis(np.arange(width, dtype=np.float64), centre_x, radius_x, -yaw)
    map_y = _turned_axis(np.arange(height, dtype=np.float64), centre_y, radius_y, -pitch)
    grid_x = np.broadcast_to(map_x[None, :], (height, width)).astype(np.float32)
    grid_y = np.broadcast_to(map_y[:, None], (height, width)).astype(np.float32)
    # Mirrored at the border: a tight crop has no pixels beyond its edge, and repeating the last column
    # draws streaks no camera makes.
    turned = cv2.remap(image, grid_x, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    points = np.asarray(landmarks, np.float64).reshape(5, 2).copy()
    points[:, 0] = _turned_axis(points[:, 0], centre_x, radius_x, yaw)
    points[:, 1] = _turned_axis(points[:, 1], centre_y, radius_y, pitch)
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
    """Whether the face's eye line is near level (the turning warp works along the image's axes)."""
    return abs(face_axes(landmarks).x_axis[1]) <= most_roll
