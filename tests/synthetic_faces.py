"""Faces the tests of mask_detector.synthetic draw on: a made-up frontal one, and a real photo's."""

import cv2
import numpy as np

from support.scripts import DATASET, require

# A frontal face with an eye distance of 60 px, in YuNet's order: right eye, left eye, nose tip, mouth corners.
FACE = np.array([[100.0, 100.0], [160.0, 100.0], [130.0, 140.0], [108.0, 172.0], [152.0, 172.0]])


def load_real_face():
    """A real unmasked face and its YuNet landmarks."""
    from mask_detector.faces import YuNetDetector
    from mask_detector.files import read_image

    image = read_image(sorted(require(DATASET / "observations" / "without_mask").glob("*.jpg"))[5])
    border = 80
    padded = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    faces = YuNetDetector(detect_size=320).detect(padded)
    assert len(faces) == 1
    return image, faces[0].landmarks - border
