"""The detect-and-classify pipeline: a frame in, its faces with labels out."""

from dataclasses import dataclass

import numpy as np

from mask_detector import label_of
from mask_detector.classifier import MaskClassifier, crop_faces
from mask_detector.faces import create_face_detector


@dataclass
class FaceResult:
    box: tuple  # x1, y1, x2, y2 in pixels
    detection_score: float
    mask_probability: float

    @property
    def label(self):
        return label_of(self.mask_probability)

    def to_json(self):
        return face_json(self)


def face_json(face):
    """A face as the scripts write it in JSON: plain numbers, rounded."""
    return {
        "box": [int(v) for v in face.box],
        "detection_score": round(float(face.detection_score), 4),
        "label": face.label,
        "mask_probability": round(float(face.mask_probability), 4),
    }


class MaskPipeline:
    """A face detector and a mask classifier used together on BGR frames.

    ``face_detector`` names the detector (see faces.FACE_DETECTORS); the
    other settings go to faces.create_face_detector.
    """

    def __init__(self, model_path, face_detector="yunet", confidence=None, detect_size=1280, single_scale=True):
        self.face_detector = create_face_detector(face_detector, confidence, detect_size, single_scale)
        self.classifier = MaskClassifier(model_path)

    def classify(self, frame, faces):
        """Probability of `mask` for each detected face (NaN where its crop is empty)."""
        crops = crop_faces(frame, [face.box for face in faces], self.classifier.input_size)
        return self.classifier.predict(crops)

    def __call__(self, frame):
        faces = self.face_detector.detect(frame)
        probabilities = self.classify(frame, faces)
        return [
            FaceResult(face.box, face.score, float(p))
            for face, p in zip(faces, probabilities)
            if not np.isnan(p)
        ]
