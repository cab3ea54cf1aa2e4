"""Detect faces, classify each one, draw the result: what both detection scripts do."""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mask_detector.classifier import MaskClassifier, crop_faces
from mask_detector.errors import UserError
from mask_detector.faces import create_detector

MASK_COLOR = (0, 200, 0)  # BGR green
NO_MASK_COLOR = (0, 0, 230)  # BGR red


@dataclass
class FaceResult:
    box: tuple  # x1, y1, x2, y2 in pixels
    detection_score: float
    mask_probability: float

    @property
    def label(self):
        return "mask" if self.mask_probability >= 0.5 else "no_mask"

    def to_json(self):
        return {
            "box": [int(v) for v in self.box],
            "detection_score": round(float(self.detection_score), 4),
            "label": self.label,
            "mask_probability": round(float(self.mask_probability), 4),
        }


class MaskDetector:
    """A face detector and a mask classifier used together on BGR frames."""

    def __init__(self, model_path, detector="yunet", confidence=None, **detector_options):
        self.detector = create_detector(detector, confidence=confidence, **detector_options)
        self.classifier = MaskClassifier(model_path)

    def classify(self, frame, faces):
        """Probability of `mask` for each detected face (NaN where its crop is empty)."""
        crops = crop_faces(frame, [face.box for face in faces], self.classifier.input_size)
        return self.classifier.predict(crops)

    def __call__(self, frame):
        faces = self.detector.detect(frame)
        probabilities = self.classify(frame, faces)
        return [
            FaceResult(face.box, face.score, float(p))
            for face, p in zip(faces, probabilities)
            if not np.isnan(p)
        ]


def draw_results(frame, results):
    """Draw a box and a `Mask 98.1%` / `No Mask 87.0%` label per face, in place."""
    height = frame.shape[0]
    thickness = max(1, round(height / 400))
    font_scale = max(0.4, height / 1000)
    for result in results:
        x1, y1, x2, y2 = result.box
        masked = result.label == "mask"
        color = MASK_COLOR if masked else NO_MASK_COLOR
        probability = result.mask_probability if masked else 1 - result.mask_probability
        text = f"{'Mask' if masked else 'No Mask'} {probability * 100:.1f}%"
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness)
        (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        # Put the label above the box, or inside it when the box touches the top edge.
        top = y1 - text_height - baseline - 2 if y1 - text_height - baseline - 2 >= 0 else y1
        cv2.rectangle(frame, (x1, top), (x1 + text_width + 2, top + text_height + baseline + 2), color, cv2.FILLED)
        cv2.putText(
            frame, text, (x1 + 1, top + text_height + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
            (255, 255, 255), thickness, cv2.LINE_AA,
        )
    return frame


def draw_status(frame, text):
    """A status line (frame rate, counts) in the top-left corner, in place."""
    cv2.putText(frame, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def display_available():
    """True when a window can be shown (an X display or a non-X desktop)."""
    import os
    import sys

    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def window_closed(name):
    """True once the user has closed the window ``name``."""
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        # OpenCV's Qt backend tears its GUI thread down with the last window and
        # then raises ("NULL guiReceiver") instead of answering.
        return True


def close_windows():
    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass  # already gone with the window the user closed (Qt backend)


def read_image(path):
    """Read an image file as 8-bit BGR, whatever its depth, channels or orientation.

    Reads through numpy so that paths with any characters work on every
    platform; EXIF orientation is applied, alpha is dropped, grey becomes BGR.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if data.size == 0:
        raise UserError(f"{path} is empty")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise UserError(f"{path} is not an image OpenCV can read")
    return image


def write_image(path, image):
    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix or ".jpg", image)
    if not ok:
        raise UserError(f"cannot encode an image as {path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded.tofile(path)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
