"""Which way a face looks: yaw, pitch and roll from YuNet's five landmarks.

A mean adult face (MediaPipe's canonical face mesh) gives where the five
points lie in 3-D; the rotation that projects them closest to the points
found in the picture is the face's pose (cv2.solvePnP). The classifier was
taught mostly frontal faces, so how far a face is turned is evidence of how
far its answer can be trusted, as its size is (judging.py).

Angles are degrees. Yaw: the nose turned towards the picture's right is
positive; pitch: looking down is positive; roll: the eye line turned
clockwise in the picture is positive. A frontal face is (0, 0, 0).
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Where YuNet's five points lie on the canonical face mesh, in cm, the face looking along +z and y up:
# the eyes' centres (the mean of each eye's corners, vertices 33/133 and 263/362), the nose tip (vertex 1)
# and the mouth corners (61 and 291). In YuNet's order: right eye, left eye, nose tip, right and left
# mouth corner (the person's right, on the left of a frontal picture).
FACE_POINTS_3D = np.array([
    [-3.1511, 2.6246, 3.4657],
    [3.1511, 2.6246, 3.4657],
    [0.0, -1.1269, 7.4756],
    [-2.4562, -4.3426, 4.2839],
    [2.4562, -4.3426, 4.2839],
], dtype=np.float64)
# The same points in OpenCV's camera axes (x right, y down, z away from the camera), for a face that looks
# at the camera: y and z change sign.
_CAMERA_POINTS = FACE_POINTS_3D * np.array([1.0, -1.0, -1.0])
# The camera's focal length in face-box sides: a face seen from a few metres, where the perspective of the
# face itself hardly matters, so the answer does not hang on a focal length nobody knows.
FOCAL_LENGTH_IN_BOXES = 8.0


@dataclass(frozen=True)
class Pose:
    """A face's yaw, pitch and roll in degrees (see the module's text for the signs)."""

    yaw: float
    pitch: float
    roll: float

    @property
    def turn(self):
        """How far the face looks away from the camera, whichever way: the angle between its own forward
        direction and the camera's line of sight, in degrees."""
        yaw, pitch = math.radians(self.yaw), math.radians(self.pitch)
        return math.degrees(math.acos(max(-1.0, min(1.0, math.cos(yaw) * math.cos(pitch)))))

    def to_json(self):
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}


def estimate_pose(landmarks):
    """The Pose of a face from its five landmarks ((5, 2) pixels, YuNet's order), or None if they give none."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    if not np.all(np.isfinite(points)):
        return None
    centre = points.mean(axis=0)
    spread = float(np.ptp(points, axis=0).max())
    if spread <= 0:
        return None
    # The points are moved to the middle of an imagined picture, scaled so that the face is about 3 units
    # wide whatever its size in pixels: the same face gives the same pose at 20 px and at 400 px.
    scale = 3.0 / spread
    image_points = (points - centre) * scale
    focal = FOCAL_LENGTH_IN_BOXES * 3.0
    camera = np.array([[focal, 0.0, 0.0], [0.0, focal, 0.0], [0.0, 0.0, 1.0]])
    # SQPnP finds the best rotation without a starting guess, four times faster than the iterative solver.
    ok, rotation_vector, _ = cv2.solvePnP(_CAMERA_POINTS, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rotation_vector)
    return pose_of_rotation(rotation)


def pose_of_rotation(rotation):
    """Yaw, pitch and roll of a rotation from face axes to camera axes (camera: x right, y down, z ahead)."""
    across = rotation[:, 0]  # from the person's right eye to the left one
    roll = math.atan2(across[1], across[0])
    # Yaw and pitch are read with the roll undone, so that a head on one side that looks at the camera
    # is not taken for a turned one.
    cos, sin = math.cos(roll), math.sin(roll)
    looking = -rotation[:, 2]  # where the face looks: at the camera when frontal
    forward = np.array([cos * looking[0] + sin * looking[1], -sin * looking[0] + cos * looking[1], looking[2]])
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(forward[1], math.hypot(forward[0], forward[2])))
    return Pose(yaw, pitch, math.degrees(roll))


def rotation_of(yaw=0.0, pitch=0.0, roll=0.0):
    """The rotation (face axes to camera axes) of a face with this pose: the inverse of pose_of_rotation."""
    yaw, pitch, roll = (math.radians(v) for v in (yaw, pitch, roll))
    # Turn about the camera's y axis (yaw), then tip about the face's own x axis (pitch), then the roll in
    # the picture's plane.
    turn = cv2.Rodrigues(np.array([0.0, -yaw, 0.0]))[0]
    tip = cv2.Rodrigues(np.array([pitch, 0.0, 0.0]))[0]
    spin = cv2.Rodrigues(np.array([0.0, 0.0, roll]))[0]
    return spin @ turn @ tip


def project(yaw=0.0, pitch=0.0, roll=0.0, size=100.0):
    """The five landmarks (pixels) of the mean face with this pose, about ``size`` px wide, seen from afar:
    what estimate_pose should turn back into the same pose."""
    points = (rotation_of(yaw, pitch, roll) @ _CAMERA_POINTS.T).T
    return points[:, :2] * (size / 12.0) + size
