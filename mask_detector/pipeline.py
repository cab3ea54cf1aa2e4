"""The detect-and-classify pipeline: an image in, its faces with labels out; its settings and presets."""

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mask_detector import DEFAULT_MODEL, FAST_MODEL
from mask_detector.classifier import PREPROCESSING, MaskClassifier, align_faces, crop_faces
from mask_detector.faces import (FACE_DETECTORS, LEAST_HIDDEN_SCORE, LIVE_DETECT_SIZE, PHOTO_DETECT_SIZE,
                                 create_face_detector)
from mask_detector.judging import judging_of
from mask_detector.labels import label_of
from mask_detector.pose import Pose, estimate_pose
from mask_detector.quiet import import_tensorflow
from mask_detector.settings import setting


def fastest_model():
    """The shipped model as the scripts load it: its LiteRT copy when set-up made it, else the model itself.

    The copy answers within 0.002 of the model, with no TensorFlow to import.
    A copy older than the model (trained again since) is not used.
    """
    fresh = (FAST_MODEL.is_file() and DEFAULT_MODEL.is_file()
             and FAST_MODEL.stat().st_mtime >= DEFAULT_MODEL.stat().st_mtime)
    return FAST_MODEL if fresh else DEFAULT_MODEL


@dataclass(frozen=True)
class PipelineSettings:
    """Everything that decides a pipeline's answers; the scripts build it from their flags.

    Use a preset (PHOTOS, LIVE) and change what differs: ``replace(LIVE, model=path)``.
    """

    # Empty: the shipped model (fastest_model); the flags show that path as their default.
    model: str = setting("", "classifier .h5, .keras or .tflite", short="-m", reads_file=True)
    face_detector: str = setting("yunet", "face detector", choices=FACE_DETECTORS, short="-d",
                                 aliases=("--detector",))
    confidence: float | None = setting(None, "least face detection score (default: the face detector's own)",
                                       float, least=0, short="-c")
    detect_size: int = setting(PHOTO_DETECT_SIZE, "YuNet: longest side of the image it searches; smaller is faster, "
                               "larger finds smaller faces", least=32)
    single_scale: bool = setting(False, "YuNet: skip the second, enlarged pass that finds faces under 32 px (faster)",
                                 negatable=True)
    preprocess: str = setting(
        "auto", "pixels the classifier expects: none = RGB 0-255 (this project's models scale inside); mobilenet_v2 "
        "= scaled to [-1, 1] first, as the classic recipe's preprocess_input; auto = none, but a model that shows no "
        "scaling of its own is refused", choices=PREPROCESSING)
    # Also find doubtful faces (faces.LEAST_HIDDEN_SCORE), which are never labelled: to pixelate them (privacy),
    # and, live, to hold tracks through a moment of low score. Not a setting of its own: the task decides it.
    doubtful_faces: bool = False

    @property
    def model_path(self):
        return Path(self.model) if self.model else fastest_model()


# A photo is searched whole and twice, for the smallest faces; a live frame once and smaller, to keep the
# frame rate (faces.PHOTO_DETECT_SIZE and LIVE_DETECT_SIZE say why these sizes).
PHOTOS = PipelineSettings()
LIVE = replace(PHOTOS, detect_size=LIVE_DETECT_SIZE, single_scale=True, doubtful_faces=True)


@dataclass
class FaceResult:
    """A face found in a picture and what the classifier made of it: what the scripts draw and write.

    In a live run each face is a tracked person's (``track_id``), and its
    label is the person's, voted over several frames: until it is decided
    (``decided``) it is the likeliest class so far, and it is None while the
    classifier was never asked about the person (``probabilities`` None).
    """

    box: tuple  # x1, y1, x2, y2 in pixels
    detection_score: float
    probabilities: dict | None  # every class the model knows, name -> probability
    # Whether the face shows enough to stand by its label (judging.Judging); an unjudged face is never a flag.
    judged: bool = True
    label: str | None = None  # the likeliest class, unless given (a person's decided label)
    track_id: int | None = None
    decided: bool = True
    pose: Pose | None = None  # which way the face looks, from its landmarks (None without them)
    not_judged_because: str | None = None  # judging.NOT_JUDGED_REASONS, for a photo's face not judged

    def __post_init__(self):
        if self.label is None and self.probabilities is not None:
            self.label = label_of(self.probabilities)

    @property
    def mask_probability(self):
        """The probability of a mask worn correctly; None while the classifier was not asked."""
        return None if self.probabilities is None else self.probabilities["mask"]

    def to_json(self):
        """The face as the scripts write it in JSON: plain numbers, rounded.

        A photo's face gives every class's probability; a live frame's gives
        its person's track id instead, which keeps a line per frame short.
        """
        face = {
            "box": [int(v) for v in self.box],
            "detection_score": round(float(self.detection_score), 4),
            "label": self.label,
            "mask_probability": None if self.probabilities is None else round(float(self.mask_probability), 4),
            "judged": bool(self.judged),
        }
        if self.not_judged_because:
            face["not_judged_because"] = self.not_judged_because
        if self.pose is not None:
            face["pose"] = self.pose.to_json()
        if self.track_id is None:
            return face | {"probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()}}
        return face | {"track_id": self.track_id}


def load_pipeline(settings):
    """The MaskPipeline of ``settings``, telling a person at a terminal why a TensorFlow model takes a while."""
    if settings.model_path.suffix.lower() in (".h5", ".keras"):
        if sys.stderr.isatty():
            # TensorFlow takes 10 to 15 s to load on a small machine; a person waiting is told why nothing moves.
            print(f"loading {settings.model_path.name} with TensorFlow (some seconds; a .tflite model starts at "
                  f"once) ...", file=sys.stderr, flush=True)
        import_tensorflow()
    return MaskPipeline(settings)


class MaskPipeline:
    """A face detector and a mask classifier used together on BGR images (see PipelineSettings)."""

    def __init__(self, settings=PHOTOS):
        self.settings = settings
        self.face_detector = create_face_detector(
            settings.face_detector, settings.confidence, settings.detect_size, settings.single_scale,
            least_score=LEAST_HIDDEN_SCORE if settings.doubtful_faces else None,
        )
        self.classifier = MaskClassifier(settings.model_path, settings.preprocess)
        self.judging = judging_of(self.classifier.card)

    def crops(self, image, faces):
        """Each face's crop as the classifier was trained to see it: aligned by its landmarks when the
        model was trained so and the face detector gives them (YuNet), else cut at its box."""
        size = self.classifier.input_size
        if self.classifier.crop == "aligned" and faces and all(face.landmarks is not None for face in faces):
            return align_faces(image, [face.landmarks for face in faces], size)
        return crop_faces(image, [face.box for face in faces], size)

    def classify(self, image, faces):
        """Each face's class probabilities (name -> probability), or None where its crop is empty."""
        return self.classify_crops(self.crops(image, faces))

    def classify_crops(self, crops):
        """Each crop's (``crops``) class probabilities (name -> probability), or None where it is empty."""
        names = self.classifier.class_names
        rows = self.classifier.predict_probabilities(crops)
        return [None if np.isnan(row).any() else dict(zip(names, map(float, row))) for row in rows]

    def __call__(self, image):
        """The FaceResult of every face in ``image`` that could be classified."""
        return self.label(image)[0]

    def label(self, image):
        """(the FaceResult of every face in ``image`` that could be classified, the boxes of doubtful faces)."""
        faces, doubtful = self.face_detector.find(image)
        results = []
        for face, probabilities in zip(faces, self.classify(image, faces)):
            if probabilities is not None:
                pose = pose_of(face)
                reason = self.judging.not_judged_because(face.box, probabilities, pose)
                results.append(FaceResult(face.box, face.score, probabilities, reason is None, pose=pose,
                                          not_judged_because=reason))
        return results, doubtful


def pose_of(face):
    """A detected face's pose.Pose from its landmarks; None when the detector gives none (the SSD)."""
    return None if face.landmarks is None else estimate_pose(face.landmarks)
