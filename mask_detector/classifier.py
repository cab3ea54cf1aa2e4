"""The mask classifier at run time: load a saved model, classify face crops.

A model takes a batch of RGB face crops with raw 0-255 pixel values at the
size of its input, and gives softmax over (mask, no_mask). Keras files
(``.h5``, ``.keras``) and LiteRT files (``.tflite``, float or fully integer)
are accepted. A model that wants its pixels scaled outside it (the classic
recipe's MobileNetV2 ``preprocess_input``) runs with ``preprocess="mobilenet_v2"``;
one that gives raw scores gets softmax applied, with a warning.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from mask_detector import DEFAULT_MODEL, FETCH_COMMAND, PROJECT_ROOT
from mask_detector.labels import CLASS_NAMES, THREE_CLASS_NAMES
from mask_detector.errors import UserError, first_line
from mask_detector.quiet import native_stderr_silenced

TRAIN_HINT = (f"`{FETCH_COMMAND}` installs the shipped one into {PROJECT_ROOT / 'models'}, "
              f"`mask-detector train --dataset dataset` trains one, or pass --model PATH")
MODEL_SUFFIXES = (".h5", ".keras", ".tflite")
# What a model expects of its input pixels: "none" takes raw 0-255 RGB (this project's models
# scale inside); "mobilenet_v2" takes [-1, 1], scaled here as MobileNetV2's preprocess_input
# does; "auto" is "none", but refuses a model that shows no scaling of its own (a Keras file
# with no scaling layer before its first convolution, an integer LiteRT input quantised for
# [-1, 1]; a float LiteRT input does not show it).
PREPROCESSING = ("auto", "none", "mobilenet_v2")
# A convolution that meets the pixels before any scaling layer is the classic recipe's sign:
# its MobileNetV2 starts with one, and wants preprocess_input applied outside.
_KERAS_CONVOLUTIONS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
_KERAS_SCALING = ("Rescaling", "Normalization")


def compute_threads():
    """Threads the classifier computes with: OMP_NUM_THREADS where a process was given its share of the cores
    (photo workers, a service's cameras: parallel.use_threads), else every core."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return os.cpu_count() or 1


def crop_faces(image_bgr, boxes, size):
    """Cut each box out of a BGR image and return RGB crops of ``size`` x ``size``.

    Boxes are clipped to the image; a box with nothing left inside gives None.
    """
    height, width = image_bgr.shape[:2]
    crops = []
    for x1, y1, x2, y2 in boxes:
        x1, y1 = max(0, int(x1)), max(0, int(y1))
        x2, y2 = min(width, int(x2)), min(height, int(y2))
        if x2 <= x1 or y2 <= y1:
            crops.append(None)
            continue
        face = image_bgr[y1:y2, x1:x2]
        # Shrinking with INTER_AREA avoids aliasing; enlarging small faces wants INTER_LINEAR.
        interpolation = cv2.INTER_AREA if (x2 - x1) > size else cv2.INTER_LINEAR
        face = cv2.resize(face, (size, size), interpolation=interpolation)
        crops.append(cv2.cvtColor(face, cv2.COLOR_BGR2RGB))
    return crops


# Where YuNet's five points (right eye, left eye, nose tip, right and left mouth corner) sit in an
# aligned face crop, as shares of its side: the median over the training images of each point
# relative to YuNet's box, in a square as wide as the box is tall, made symmetric. So an aligned
# crop shows what a box crop shows on average, but every face at the same place, size and angle.
FACE_TEMPLATE = np.array([[0.3155, 0.393], [0.6845, 0.393], [0.5, 0.595], [0.349, 0.743], [0.651, 0.743]],
                         dtype=np.float32)


def alignment_matrix(landmarks, size):
    """The 2x3 similarity (turn, scale, shift) that carries five landmarks onto FACE_TEMPLATE in a
    ``size`` x ``size`` crop, fitted by least squares over the five points; None if they give none."""
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32).reshape(5, 2),
                                            FACE_TEMPLATE * size, method=cv2.LMEDS)
    return matrix


def align_faces(image_bgr, landmarks, size):
    """RGB crops of ``size`` x ``size``, each face warped by its five landmarks onto FACE_TEMPLATE.

    A face seen large is first shrunk with INTER_AREA to twice the crop's
    scale, as crop_faces does, so the warp does not alias it. Points that
    give no similarity (all at one place) give None.
    """
    crops = []
    for points in landmarks:
        matrix = alignment_matrix(points, size)
        if matrix is None:
            crops.append(None)
            continue
        source, matrix = _face_region(image_bgr, matrix, size)
        face = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        crops.append(cv2.cvtColor(face, cv2.COLOR_BGR2RGB))
    return crops


def _face_region(image, matrix, size):
    """The part of the image an aligned crop is taken from, shrunk when the face is large, and the matrix
    that takes the crop from it: only that part is ever resized, however large the photo."""
    corners = cv2.invertAffineTransform(matrix) @ np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]],
                                                           dtype=np.float64).T
    height, width = image.shape[:2]
    x0, y0 = (max(0, int(np.floor(v)) - 2) for v in corners.min(axis=1))
    x1, y1 = min(width, int(np.ceil(corners[0].max())) + 2), min(height, int(np.ceil(corners[1].max())) + 2)
    if x1 <= x0 or y1 <= y0:  # the face lies wholly outside the image: warp from the whole of it
        return image, matrix
    matrix = matrix.astype(np.float64)
    matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    region = image[y0:y1, x0:x1]
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
    if scale < 0.5:
        shrink = 2 * scale
        region = cv2.resize(region, (max(1, round((x1 - x0) * shrink)), max(1, round((y1 - y0) * shrink))),
                            interpolation=cv2.INTER_AREA)
        matrix[:, :2] /= shrink
    return region, matrix


# The LiteRT copies are named after the model they were made from: mask_detector_float16.tflite
# is mask_detector.h5's, and shares its card.
COPY_SUFFIXES = ("_float16", "_int8")


def card_path(model_path):
    """The model card of a model file: beside it, named after it, or after the model a LiteRT copy was made from."""
    path = Path(model_path)
    stem = path.stem
    for suffix in COPY_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return path.with_name(stem + ".json")


def read_card(model_path):
    """A model's card as a dict; {} when it has none or it cannot be read (the model still runs)."""
    try:
        card = json.loads(card_path(model_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def plain_shape(shape):
    """A shape as a tuple of plain ints (or None), whatever numpy or Keras handed over."""
    return tuple(None if d is None else int(d) for d in shape)


def softmax(scores):
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _keras_scales_input(model):
    """False when the pixels meet a convolution before any scaling layer, else True."""
    import keras

    def flat(layers):
        for layer in layers:
            yield from flat(layer.layers) if isinstance(layer, keras.Model) else (layer,)

    for layer in flat(model.layers):
        kind = type(layer).__name__
        if kind in _KERAS_SCALING:
            return True
        if kind in _KERAS_CONVOLUTIONS:
            return False
    return True


def _litert_scales_input(detail):
    """The same question for a LiteRT input: an integer input's quantisation says the range it takes.

    About [-1, 1] means scaled outside, 0-255 inside. For a float input it
    cannot tell (None): the converter folds a scaling into the first
    convolution, so the graph looks the same either way.
    """
    if not np.issubdtype(detail["dtype"], np.integer):
        return None
    scale, zero_point = detail["quantization"]
    return bool((np.iinfo(detail["dtype"]).max - zero_point) * scale > 2)


class MaskClassifier:
    """Wraps a saved classifier; ``predict`` returns the probability of `mask` per crop.

    ``backend`` says which runtime runs it: "keras" (then ``keras_model`` is
    the loaded model) or "litert". ``preprocess`` is one of PREPROCESSING.
    """

    def __init__(self, path=DEFAULT_MODEL, preprocess="auto"):
        path = Path(path)
        if not path.is_file():
            raise UserError(f"model file {path} not found; {TRAIN_HINT}")
        if preprocess not in PREPROCESSING:
            raise UserError(f"unknown preprocessing {preprocess!r}; choose one of {', '.join(PREPROCESSING)}")
        self.path = path
        suffix = path.suffix.lower()
        if suffix not in MODEL_SUFFIXES:
            raise UserError(f"model file {path} must end in .h5, .keras or .tflite")
        scales_input = self._load_litert(path) if suffix == ".tflite" else self._load_keras(path)
        if preprocess == "auto" and scales_input is False:
            raise UserError(
                f"model {path} has no scaling layer before its first convolution, so it wants its pixels "
                f"scaled before it (as the classic recipe's MobileNetV2 preprocess_input does): "
                f"run with --preprocess mobilenet_v2, or --preprocess none if it takes 0-255 pixels"
            )
        self._to_minus1_1 = preprocess == "mobilenet_v2"
        self.card = read_card(path)
        # How the model was trained to see a face: "aligned" by its five landmarks, or cut at its "box".
        self.crop = "aligned" if self.card.get("crop") == "aligned" else "box"
        self._softmax = False
        if not self._gives_probabilities():
            print(f"warning: model {path} gives raw scores, not probabilities (no softmax at its end); "
                  f"softmax is applied to them", file=sys.stderr)
            self._softmax = True

    def _check_shapes(self, input_shape, output_shape):
        input_shape, output_shape = plain_shape(input_shape), plain_shape(output_shape)
        if len(input_shape) != 4 or input_shape[3] != 3 or input_shape[1] != input_shape[2] or not input_shape[1]:
            raise UserError(f"model {self.path} takes input of shape {input_shape}; expected (batch, N, N, 3)")
        if len(output_shape) != 2 or output_shape[1] not in (2, 3):
            raise UserError(
                f"model {self.path} gives output of shape {output_shape}; expected (batch, 2) for {CLASS_NAMES} "
                f"or (batch, 3) for {THREE_CLASS_NAMES}"
            )
        self.input_size = int(input_shape[1])
        # The classes are known by the output's width: the model files hold no names.
        self.class_names = CLASS_NAMES if output_shape[1] == 2 else THREE_CLASS_NAMES

    def _load_keras(self, path):
        import keras
        import tensorflow as tf

        with tempfile.TemporaryDirectory() as scratch:
            readable = path
            if path.suffix not in MODEL_SUFFIXES:  # Keras picks the format by a lower-case suffix
                readable = Path(scratch) / f"model{path.suffix.lower()}"
                shutil.copyfile(path, readable)
            try:
                # safe_mode refuses model files that would run arbitrary Python (Lambda layers).
                model = keras.models.load_model(readable, compile=False, safe_mode=True)
            except Exception as error:  # Keras raises many types for a broken file
                if "arbitrary code" in str(error):
                    raise UserError(
                        f"model {path} holds Python code (a Lambda layer) and is refused: models load in safe mode"
                    ) from None
                raise UserError(
                    f"cannot load model {path} (damaged or not a Keras model): {first_line(error)}"
                ) from None
        self._check_shapes(model.input_shape, model.output_shape)
        self.backend = "keras"
        self.keras_model = model
        size = self.input_size
        # One traced graph for every batch size: far cheaper per frame than model.predict.
        self._run = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
        )
        return _keras_scales_input(model)

    def _load_litert(self, path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_stderr_silenced():  # its "Created ... XNNPACK delegate" line
                interpreter = Interpreter(model_path=str(path), num_threads=compute_threads())
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise UserError(f"cannot load model {path}: {first_line(error)}") from None
        input_detail = interpreter.get_input_details()[0]
        output_detail = interpreter.get_output_details()[0]
        self._check_shapes(input_detail["shape"], output_detail["shape"])
        for detail, side in ((input_detail, "input"), (output_detail, "output")):
            quantised = detail["dtype"] in (np.uint8, np.int8) and detail["quantization"][0]
            if np.issubdtype(detail["dtype"], np.integer) and not quantised:
                raise UserError(f"model {path} has {np.dtype(detail['dtype']).name} {side} without a "
                                f"quantisation scale; expected float32, or uint8 / int8 with scale and zero point")
        self.backend = "litert"
        self.keras_model = None
        self._interpreter = interpreter
        self._input, self._output = input_detail, output_detail
        self._batch = None
        self._run = self._run_litert
        return _litert_scales_input(input_detail)

    def _run_litert(self, batch):
        interpreter = self._interpreter
        if self._batch != len(batch):
            interpreter.resize_tensor_input(self._input["index"], batch.shape)
            interpreter.allocate_tensors()
            self._batch = len(batch)
        interpreter.set_tensor(self._input["index"], _quantise(batch, self._input))
        interpreter.invoke()
        return _dequantise(interpreter.get_tensor(self._output["index"]), self._output)

    def _scores(self, batch):
        """The model's output for a float32 batch of 0-255 RGB crops."""
        if self._to_minus1_1:
            batch = batch / 127.5 - 1.0
        return np.asarray(self._run(batch), dtype=np.float32)

    def _gives_probabilities(self):
        """Whether the model's outputs are probabilities, tried on crops of noise and of flat colours."""
        rng = np.random.default_rng(0)
        size = self.input_size
        batch = np.concatenate([
            rng.uniform(0, 255, (3, size, size, 3)),
            np.full((3, size, size, 3), 1.0) * np.array([0.0, 128.0, 255.0])[:, None, None, None],
        ]).astype(np.float32)
        scores = self._scores(batch)
        tolerance = 0.02  # a uint8 output rounds each probability by up to 1/512
        return bool(np.all(scores >= -tolerance) and np.all(scores <= 1 + tolerance)
                    and np.allclose(scores.sum(axis=1), 1.0, atol=tolerance))

    def predict_probabilities(self, crops):
        """Class probabilities (one row per crop, columns as class_names); None crops give NaN rows."""
        present = [i for i, crop in enumerate(crops) if crop is not None]
        probabilities = np.full((len(crops), len(self.class_names)), np.nan, dtype=np.float32)
        if present:
            scores = self._scores(np.stack([crops[i] for i in present]).astype(np.float32))
            if self._softmax:
                scores = softmax(scores)
            probabilities[present] = np.clip(scores, 0.0, 1.0)
        return probabilities

    def predict(self, crops):
        """Probabilities of `mask` for a list of RGB crops (None entries give NaN)."""
        return self.predict_probabilities(crops)[:, self.class_names.index("mask")]


def _quantise(batch, detail):
    """A float batch in the tensor's own type: integer tensors carry a scale and a zero point."""
    kind = detail["dtype"]
    if not np.issubdtype(kind, np.integer):
        return batch.astype(kind)
    scale, zero_point = detail["quantization"]
    limits = np.iinfo(kind)
    return np.clip(np.round(batch / scale + zero_point), limits.min, limits.max).astype(kind)


def _dequantise(values, detail):
    if not np.issubdtype(detail["dtype"], np.integer):
        return values
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * scale
