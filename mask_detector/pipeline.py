"""The detect-and-classify pipeline: a frame in, its faces with labels out."""

from dataclasses import dataclass

import numpy as np

from mask_detector.labels import label_of, two_class
from mask_detector.classifier import MaskClassifier, align_faces, crop_faces
from mask_detector.faces import create_face_detector
from mask_detector.judging import judging_of


@dataclass
class FaceResult:
    box: tuple  # x1, y1, x2, y2 in pixels
    detection_score: float
    mask_probability: float  # of a mask worn correctly
    # Every class the model knows, name -> probability; a two-class model's from mask_probability.
    probabilities: dict | None = None
    # Whether the face shows enough to stand by its label (judging.Judging); an unjudged face is never a flag.
    judged: bool = True

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
        "judged": bool(face.judged),
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
        self.judging = judging_of(self.classifier.card)

    def crops(self, frame, faces):
        """Each face's crop as the classifier was trained to see it: aligned by its landmarks when the
        model was trained so and the face detector gives them (YuNet), else cut at its box."""
        size = self.classifier.input_size
        if self.classifier.crop == "aligned" and faces and all(face.landmarks is not None for face in faces):
            return align_faces(frame, [face.landmarks for face in faces], size)
        return crop_faces(frame, [face.box for face in faces], size)

    def probabilities(self, frame, faces):
        """Class probabilities of each face, one row each (columns: classifier.class_names; NaN: no crop)."""
        return self.classifier.predict_probabilities(self.crops(frame, faces))

    def classify(self, frame, faces):
        """Probability of `mask` for each detected face (NaN where its crop is empty)."""
        return self.probabilities(frame, faces)[:, self.classifier.class_names.index("mask")]

    def __call__(self, frame):
        faces = self.face_detector.detect(frame)
        names = self.classifier.class_names
        results = []
        for face, row in zip(faces, self.probabilities(frame, faces)):
            if np.isnan(row).any():
                continue
            probabilities = dict(zip(names, map(float, row)))
            results.append(FaceResult(face.box, face.score, probabilities["mask"], probabilities,
                                      self.judging.judged(face.box, probabilities)))
        return results
