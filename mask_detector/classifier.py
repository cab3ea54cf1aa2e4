"""The mask classifier at run time: load a saved model, classify face crops.

A model takes a batch of RGB face crops with raw 0-255 pixel values at the
size of its input, and gives softmax over (mask, no_mask). Keras files
(``.h5``, ``.keras``) and LiteRT files (``.tflite``, float or fully integer)
are accepted. A model that wants its pixels scaled outside it (the classic
recipe's MobileNetV2 ``preprocess_input``) runs with ``preprocess="mobilenet_v2"``;
one that gives raw scores gets softmax applied, with a warning.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from mask_detector import CLASS_NAMES, DEFAULT_MODEL, THREE_CLASS_NAMES
from mask_detector.errors import UserError, first_line
from mask_detector.quiet import native_stderr_silenced

TRAIN_HINT = "train one with `python train_mask_detector.py --dataset dataset` or pass --model PATH"
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
                interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
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
