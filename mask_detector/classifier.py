"""The mask classifier at run time: load a saved model, classify face crops.

A model takes a batch of RGB face crops with raw 0-255 pixel values at the
size of its input, and gives softmax over (mask, no_mask). Keras files
(``.h5``, ``.keras``) and LiteRT files (``.tflite``) are accepted.
"""

import os
from pathlib import Path

import cv2
import numpy as np

from mask_detector import CLASS_NAMES, DEFAULT_MODEL
from mask_detector.errors import UserError, first_line

TRAIN_HINT = "train one with `python train_mask_detector.py --dataset dataset` or pass --model PATH"


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


class MaskClassifier:
    """Wraps a saved classifier; ``predict`` returns the probability of `mask` per crop.

    ``backend`` says which runtime runs it: "keras" (then ``keras_model`` is
    the loaded model) or "litert".
    """

    def __init__(self, path=DEFAULT_MODEL):
        self.class_names = CLASS_NAMES
        path = Path(path)
        if not path.is_file():
            raise UserError(f"model file {path} not found; {TRAIN_HINT}")
        self.path = path
        if path.suffix == ".tflite":
            self._load_litert(path)
        elif path.suffix in (".h5", ".keras"):
            self._load_keras(path)
        else:
            raise UserError(f"model file {path} must end in .h5, .keras or .tflite")

    def _check_shapes(self, input_shape, output_shape):
        input_shape, output_shape = tuple(input_shape), tuple(output_shape)
        if len(input_shape) != 4 or input_shape[3] != 3 or input_shape[1] != input_shape[2] or not input_shape[1]:
            raise UserError(f"model {self.path} takes input of shape {input_shape}; expected (batch, N, N, 3)")
        if len(output_shape) != 2 or output_shape[1] != len(CLASS_NAMES):
            raise UserError(
                f"model {self.path} gives output of shape {output_shape}; expected (batch, 2) for {CLASS_NAMES}"
            )
        self.input_size = int(input_shape[1])

    def _load_keras(self, path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf

        try:
            # safe_mode refuses model files that would run arbitrary Python (Lambda layers).
            model = keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a broken file
            if "arbitrary code" in str(error):
                raise UserError(
                    f"model {path} holds Python code (a Lambda layer) and is refused: models load in safe mode"
                ) from None
            raise UserError(f"cannot load model {path} (damaged or not a Keras model): {first_line(error)}") from None
        self._check_shapes(model.input_shape, model.output_shape)
        self.backend = "keras"
        self.keras_model = model
        size = self.input_size
        # One traced graph for every batch size: far cheaper per frame than model.predict.
        self._run = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
        )

    def _load_litert(self, path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
        except (ValueError, RuntimeError) as error:
            raise UserError(f"cannot load model {path}: {first_line(error)}") from None
        input_detail = interpreter.get_input_details()[0]
        output_detail = interpreter.get_output_details()[0]
        self._check_shapes(input_detail["shape"], output_detail["shape"])
        self.backend = "litert"
        self.keras_model = None
        self._interpreter = interpreter
        self._input, self._output = input_detail, output_detail
        self._batch = None
        self._run = self._run_litert

    def _run_litert(self, batch):
        interpreter = self._interpreter
        if self._batch != len(batch):
            interpreter.resize_tensor_input(self._input["index"], batch.shape)
            interpreter.allocate_tensors()
            self._batch = len(batch)
        interpreter.set_tensor(self._input["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(self._output["index"])

    def predict_probabilities(self, crops):
        """Class probabilities (one row per crop, columns as CLASS_NAMES); None crops give NaN rows."""
        present = [i for i, crop in enumerate(crops) if crop is not None]
        probabilities = np.full((len(crops), len(CLASS_NAMES)), np.nan, dtype=np.float32)
        if present:
            batch = np.stack([crops[i] for i in present]).astype(np.float32)
            probabilities[present] = np.asarray(self._run(batch))
        return probabilities

    def predict(self, crops):
        """Probabilities of `mask` for a list of RGB crops (None entries give NaN)."""
        return self.predict_probabilities(crops)[:, CLASS_NAMES.index("mask")]
