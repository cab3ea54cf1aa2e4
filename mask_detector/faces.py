"""Face detectors on OpenCV: YuNet and the SSD ResNet-10, behind one interface.

Both run on OpenCV 4.x and 5.x. The SSD is loaded from its TensorFlow files
because OpenCV 5 no longer imports Caffe models; on OpenCV 4 the Caffe files
can be used instead (``ssd-caffe``).
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mask_detector import FACE_DETECTOR_DIR, FETCH_COMMAND, PROJECT_ROOT
from mask_detector.boxes import clipped, drop_nested
from mask_detector.errors import UserError

FACE_DETECTORS = ("yunet", "ssd", "ssd-caffe")
FETCH_HINT = (f"run `{FETCH_COMMAND}` (it fetches every file the scripts need into {PROJECT_ROOT}; "
              f"--mirror DIR copies them from a local mirror)")
# The longest side of the image YuNet searches, by what it searches. A photo is searched at 1280 px, so
# that the 10-20 px faces of a street photo are found. A live frame at 480 px: that halves YuNet's time on
# a 640x480 webcam frame (benchmarks/bench_pipeline.py), and faces near a camera are large. A training
# image or a synthetic source photo (200-900 px, one face) at 320 px: its face stays large, and it is fast.
PHOTO_DETECT_SIZE, LIVE_DETECT_SIZE, CROP_DETECT_SIZE = 1280, 480, 320
# Faces hidden for privacy are searched down to this score: a doubtful face is pixelated, never labelled.
# At 0.3 YuNet finds the small, turned faces of the sample photos that it scores 0.5 in one pass and 0.7 in
# another, and a few patches that are no face: hiding a patch costs nothing, missing a face does.
LEAST_HIDDEN_SCORE = 0.3


@dataclass
class Face:
    """A detected face: integer pixel box (x1, y1, x2, y2), clipped to the image."""

    box: tuple
    score: float
    landmarks: np.ndarray | None = None  # 5 (x, y) points for YuNet: eyes, nose, mouth corners


def _require(path):
    if not Path(path).is_file():
        raise UserError(f"face detector file {path} is missing; {FETCH_HINT}")
    return str(path)


class YuNetDetector:
    """OpenCV's YuNet (cv2.FaceDetectorYN): fast, finds small faces, gives landmarks.

    ``detect_size`` bounds the longer side of the image the network sees
    (larger images are shrunk first, which keeps speed and memory steady).
    Unless ``single_scale``, the image is also searched at twice that scale
    and both passes are merged: faces of 10-20 pixels are found in the
    enlarged copy, while large faces are only found at the first scale, so
    neither pass alone finds both. A box lying mostly inside a larger one is
    the same face found twice, and is dropped.

    With a ``least_score`` below ``confidence``, ``find`` also gives the boxes
    of doubtful faces, scored between the two, from the same passes.
    """

    def __init__(self, model_dir=FACE_DETECTOR_DIR, confidence=0.6, detect_size=PHOTO_DETECT_SIZE,
                 single_scale=True, least_score=None):
        model = _require(Path(model_dir) / "face_detection_yunet_2023mar.onnx")
        self.confidence = confidence
        least = confidence if least_score is None else min(least_score, confidence)
        try:
            self._net = cv2.FaceDetectorYN.create(model, "", (320, 320), least, 0.3, 5000)
        except cv2.error:
            raise UserError(f"cannot load the YuNet model {model}; it may be corrupt. {FETCH_HINT}") from None
        self.detect_size = detect_size
        self.single_scale = single_scale

    def _detect_at(self, image, scale):
        height, width = image.shape[:2]
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            # INTER_AREA avoids aliasing when shrinking a lot; for less than half it costs
            # five times INTER_LINEAR (3 ms on a 640x480 frame) and looks the same.
            interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
            image = cv2.resize(image, size, interpolation=interpolation)
        self._net.setInputSize((image.shape[1], image.shape[0]))
        _, rows = self._net.detect(image)
        if rows is None:
            return np.zeros((0, 15), dtype=np.float32)
        rows = rows.copy()
        rows[:, :14] /= scale
        return rows

    def detect(self, image):
        """The faces in a BGR image, best score first."""
        return self.find(image)[0]

    def find(self, image):
        """(the faces in a BGR image, the boxes of doubtful faces: see least_score)."""
        height, width = image.shape[:2]
        longer = max(width, height)
        scale = min(1.0, self.detect_size / longer) if self.detect_size else 1.0
        rows = self._detect_at(image, scale)
        if not self.single_scale:
            rows = np.concatenate([rows, self._detect_at(image, scale * 2)])
        # Doubtful faces are set apart before the passes are merged: a face is found as if they were not there.
        doubtful, rows = rows[rows[:, 14] < self.confidence], rows[rows[:, 14] >= self.confidence]
        if not self.single_scale:
            if len(rows):
                boxes = rows[:, :4].tolist()
                keep = cv2.dnn.NMSBoxes(boxes, rows[:, 14].tolist(), 0.0, 0.3)
                rows = rows[np.asarray(keep, dtype=int).reshape(-1)]
                # The enlarged pass also finds parts of a large face (the eyes and the top of a mask) as a
                # face of their own, inside the first pass's box: IoU is small, so NMS keeps both.
                corners = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], axis=1)
                rows = rows[drop_nested(corners)]
        faces = []
        for row in rows[np.argsort(-rows[:, 14])]:
            x, y, w, h = row[:4]
            box = clipped((x, y, x + w, y + h), width, height)
            if box[2] > box[0] and box[3] > box[1]:
                faces.append(Face(box, float(row[14]), row[4:14].reshape(5, 2)))
        return faces, [clipped((x, y, x + w, y + h), width, height) for x, y, w, h in doubtful[:, :4]]


class SSDDetector:
    """OpenCV's SSD with a ResNet-10 backbone, the classic face-mask detector's choice.

    It looks at a 300x300 copy of the whole image, so faces below about 40
    pixels in a large photo are often missed.
    """

    INPUT_SIZE = (300, 300)
    MEAN = (104.0, 177.0, 123.0)

    def __init__(self, model_dir=FACE_DETECTOR_DIR, confidence=0.5, use_caffe=False, least_score=None):
        model_dir = Path(model_dir)
        try:
            if use_caffe:
                if not hasattr(cv2.dnn, "readNetFromCaffe"):
                    raise UserError(f"OpenCV {cv2.__version__} cannot read Caffe models; use --detector ssd")
                self._net = cv2.dnn.readNetFromCaffe(
                    _require(model_dir / "deploy.prototxt"),
                    _require(model_dir / "res10_300x300_ssd_iter_140000.caffemodel"),
                )
            else:
                self._net = cv2.dnn.readNetFromTensorflow(
                    _require(model_dir / "opencv_face_detector_uint8.pb"),
                    _require(model_dir / "opencv_face_detector.pbtxt"),
                )
        except cv2.error:
            raise UserError(f"cannot load the SSD face detector from {model_dir}; it may be corrupt. {FETCH_HINT}") from None
        self.confidence = confidence
        self.least_score = confidence if least_score is None else min(least_score, confidence)

    def detect(self, image):
        """The faces in a BGR image."""
        return self.find(image)[0]

    def find(self, image):
        """(the faces in a BGR image, the boxes of doubtful faces, scored from least_score up to confidence)."""
        height, width = image.shape[:2]
        blob = cv2.dnn.blobFromImage(image, 1.0, self.INPUT_SIZE, self.MEAN, swapRB=False, crop=False)
        self._net.setInput(blob)
        detections = self._net.forward().reshape(-1, 7)
        faces, doubtful = [], []
        for _, _, score, x1, y1, x2, y2 in detections:
            if score < self.least_score:
                continue
            box = clipped((x1 * width, y1 * height, x2 * width, y2 * height), width, height)
            if score < self.confidence:
                doubtful.append(box)
            elif box[2] > box[0] and box[3] > box[1]:
                faces.append(Face(box, float(score)))
        return faces, doubtful


# A face crop (a training image) leaves YuNet no room around the face, and it
# misses such faces: a grey border of this share of the longer side gives it some.
CROP_BORDER = 0.3


def faces_in_crop(detector, image):
    """The faces ``detector`` finds in an image that is itself a face crop, in the image's coordinates.

    Boxes are clipped to the image, as the pipeline clips a face at a frame's
    edge; landmarks are not (a chin may lie below the crop).
    """
    height, width = image.shape[:2]
    border = round(CROP_BORDER * max(height, width))
    padded = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    faces = []
    for face in detector.detect(padded):
        box = clipped([v - border for v in face.box], width, height)
        if box[2] > box[0] and box[3] > box[1]:
            landmarks = None if face.landmarks is None else face.landmarks - border
            faces.append(Face(box, face.score, landmarks))
    return faces


def create_face_detector(name="yunet", confidence=None, detect_size=PHOTO_DETECT_SIZE, single_scale=True,
                         model_dir=FACE_DETECTOR_DIR, least_score=None):
    """Build a face detector by name; ``confidence`` None keeps the detector's default.

    ``detect_size`` and ``single_scale`` are YuNet's; the SSD always looks at 300x300.
    ``least_score`` is where its search for doubtful faces stops (None: no such search).
    """
    if name not in FACE_DETECTORS:
        raise UserError(f"unknown face detector {name!r}; choose one of {', '.join(FACE_DETECTORS)}")
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise UserError(f"--confidence must be between 0 and 1, got {confidence}")
    extra = ({} if confidence is None else {"confidence": confidence}) | {"least_score": least_score}
    if name == "yunet":
        return YuNetDetector(model_dir, detect_size=detect_size, single_scale=single_scale, **extra)
    return SSDDetector(model_dir, use_caffe=(name == "ssd-caffe"), **extra)
