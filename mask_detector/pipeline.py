"""The detect-and-classify pipeline: a frame in, its faces with labels out."""

from dataclasses import dataclass

import numpy as np

from mask_detector import label_of, two_class
from mask_detector.classifier import MaskClassifier, crop_faces
from mask_detector.faces import create_face_detector


@dataclass
class FaceResult:
    box: tuple  # x1, y1, x2, y2 in pixels
    detection_score: float
    mask_probability: float  # of a mask worn correctly
    # Every class the model knows, name -> probability; a two-class model's from mask_probability.
    probabilities: dict | None = None

    def __post_init__(self):
        if self.probabilities is None:
            self.probabilities = two_class(self.mask_probability)

    @property
    def label(self):
        return label_of(self.probabilities)

    def to_json(self):
        return face_json(self) | {"probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()}}


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
    other settings go to faces.create_face_detector. ``preprocess`` says
    what the classifier expects of its pixels (see classifier.PREPROCESSING).
    """

    def __init__(self, model_path, face_detector="yunet", confidence=None, detect_size=1280, single_scale=True,
                 preprocess="auto"):
        self.face_detector = create_face_detector(face_detector, confidence, detect_size, single_scale)
        self.classifier = MaskClassifier(model_path, preprocess)

    def classify(self, frame, faces):
        """Probability of `mask` for each detected face (NaN where its crop is empty)."""
        crops = crop_faces(frame, [face.box for face in faces], self.classifier.input_size)
        return self.classifier.predict(crops)

    def __call__(self, frame):
        faces = self.face_detector.detect(frame)
        crops = crop_faces(frame, [face.box for face in faces], self.classifier.input_size)
        names = self.classifier.class_names
        return [
            FaceResult(face.box, face.score, float(row[names.index("mask")]), dict(zip(names, map(float, row))))
            for face, row in zip(faces, self.classifier.predict_probabilities(crops))
            if not np.isnan(row).any()
        ]
