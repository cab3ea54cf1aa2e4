"""mask_detector/synthetic/head.py: the mean face mesh laid on a real face, turned in 3-D, far side hidden."""

import cv2
import numpy as np
import pytest

from mask_detector.pose import estimate_pose
from mask_detector.synthetic.head import fit_face, load_face_mesh, turn_face
from synthetic_faces import load_real_face


@pytest.fixture(scope="module")
def real_face():
    return load_real_face()


def test_the_mesh_is_laid_on_the_five_landmarks(real_face):
    image, landmarks = real_face
    fitted = fit_face(landmarks)
    from mask_detector.pose import FACE_POINTS_3D

    placed, _ = fitted.place(FACE_POINTS_3D, fitted.source_rotation)
    eye_distance = np.linalg.norm(landmarks[1] - landmarks[0])
    assert np.abs(placed - landmarks).max() < 0.15 * eye_distance
    mesh = load_face_mesh()
    assert mesh.vertices.shape == (468, 3) and mesh.triangles.max() < 468


def test_a_face_drawn_at_its_own_pose_is_the_photo_again(real_face):
    image, landmarks = real_face
    pose = estimate_pose(landmarks)
    same, points = turn_face(image, landmarks, pose.yaw, pose.pitch)
    assert same.shape == image.shape
    x1, y1 = landmarks.min(axis=0).astype(int)
    x2, y2 = landmarks.max(axis=0).astype(int)
    difference = np.abs(same[y1:y2, x1:x2].astype(int) - image[y1:y2, x1:x2].astype(int)).mean()
    assert difference < 12, difference


@pytest.mark.parametrize("yaw", [-60.0, 60.0])
def test_a_turned_face_hides_its_far_cheek_and_shows_its_near_one(real_face, yaw):
    """Red on the cheek away from the turn is hidden behind the nose; blue on the near cheek is still seen."""
    image, landmarks = real_face
    marked = image.copy()
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    # Turned to the picture's right (yaw > 0), the far cheek is the one on the picture's right.
    far_eye, near_eye = (left_eye, right_eye) if yaw > 0 else (right_eye, left_eye)
    radius = max(2, int(0.12 * np.linalg.norm(left_eye - right_eye)))
    for eye, colour in ((far_eye, (0, 0, 255)), (near_eye, (255, 0, 0))):
        cheek = eye + 0.55 * (nose - eye) + (0.4 * (eye - nose)[0], 0) + (0, 0.3 * np.linalg.norm(nose - eye))
        cv2.circle(marked, tuple(int(v) for v in cheek), radius, colour, -1)
    turned, points = turn_face(marked, landmarks, yaw, 0.0)

    def pure(channel):
        others = [c for c in range(3) if c != channel]
        return ((turned[..., channel] > 200) & (turned[..., others] < 60).all(axis=-1)).sum()

    assert pure(0) > 0.3 * np.pi * radius ** 2  # the near cheek
    assert pure(2) < 0.1 * np.pi * radius ** 2  # the far cheek
    assert np.sign(points[2, 0] - points[:2, 0].mean()) == np.sign(yaw)  # the nose points the way asked


def test_yunet_sees_the_turn_it_was_given(real_face):
    """The face detector's own landmarks on the turned faces say which way they turned, and how far, roughly."""
    from mask_detector.faces import CROP_DETECT_SIZE, YuNetDetector, faces_in_crop

    image, landmarks = real_face
    detector = YuNetDetector(detect_size=CROP_DETECT_SIZE)
    for yaw in (-40.0, 40.0):
        faces = faces_in_crop(detector, turn_face(image, landmarks, yaw, 0.0)[0])
        assert len(faces) == 1
        seen = estimate_pose(faces[0].landmarks).yaw
        assert np.sign(seen) == np.sign(yaw) and abs(seen) > 15, (yaw, seen)
