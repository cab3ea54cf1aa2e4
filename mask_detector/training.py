"""Build, train and save the MobileNetV2 mask classifier."""

import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mask_detector import CLASS_NAMES  # noqa: E402
from mask_detector.assets import backbone_weights_path  # noqa: E402
from mask_detector.errors import UserError  # noqa: E402


def build_model(image_size, weights="imagenet", dropout=0.5):
    """MobileNetV2 (ImageNet, frozen) with a new two-class head.

    The model takes raw 0-255 RGB pixels: scaling to MobileNetV2's [-1, 1]
    happens inside, so whoever loads the file needs no preprocessing code.
    """
    if weights == "imagenet":
        # The no-top weights do not depend on the input size, so the 224 file
        # serves every size; Keras would otherwise look for a file per size.
        weights = backbone_weights_path()
        if not weights.is_file():
            raise UserError(
                f"MobileNetV2 ImageNet weights not found at {weights}; run `python -m mask_detector.assets`"
            )
        weights = str(weights)
    base = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3), include_top=False, weights=weights
    )
    base.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="face_rgb_0_255")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="to_minus1_1")(inputs)
    # training=False keeps BatchNorm statistics fixed, also when the top is unfrozen later.
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax", name="mask_no_mask")(x)
    return keras.Model(inputs, outputs, name="mask_classifier")


def unfreeze_top(model, layers_from="block_13_expand"):
    """Make the backbone trainable from ``layers_from`` on; earlier layers stay frozen."""
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    base.trainable = True
    trainable = False
    for layer in base.layers:
        trainable = trainable or layer.name == layers_from
        # BatchNorm stays frozen: small fine-tuning sets would corrupt its statistics.
        layer.trainable = trainable and not isinstance(layer, keras.layers.BatchNormalization)


class _LegacyFormatNotice(logging.Filter):
    """Hide Keras' notice that .h5 is a legacy format: this project writes .h5 on purpose, beside .keras."""

    def filter(self, record):
        return "HDF5 file" not in record.getMessage()


def save_atomically(model, path):
    """Write the model to a temporary file beside ``path`` and rename it into place.

    An interrupted save never leaves a half-written model under the real name.
    Only layers and weights are written, not the optimizer's state: the file
    is for inference, and the state would double its size once the
    backbone's top is trainable.
    """
    path = Path(path)
    # A new, uncompiled model over the same layers and weights has no optimizer to save.
    inference_model = keras.Model(model.inputs, model.outputs, name=model.name)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    notice_filter = _LegacyFormatNotice()
    logging.getLogger("absl").addFilter(notice_filter)
    try:
        inference_model.save(temporary)
        os.replace(temporary, path)
    finally:
        logging.getLogger("absl").removeFilter(notice_filter)
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(data, path):
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomically(data, path):
    write_bytes_atomically((json.dumps(data, indent=2) + "\n").encode(), path)


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the best model so far on disk, written atomically, for interrupted runs."""

    def __init__(self, path, monitor="val_loss"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = np.inf
        self.saved = False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best = value
            save_atomically(self.model, self.path)
            self.saved = True


def check_writable(path):
    """Fail before training, not after, if the output cannot be written."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to {folder}: {error.strerror or error}") from None


def plot_history(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for key, axis in (("loss", loss_axis), ("accuracy", accuracy_axis)):
        epochs = np.arange(1, len(history[key]) + 1)
        axis.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
    figure.tight_layout()
    temporary = Path(path).with_name(f".{Path(path).stem}.partial.png")
    figure.savefig(temporary)
    plt.close(figure)
    os.replace(temporary, path)


def environment_versions():
    import cv2
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "opencv": cv2.__version__,
    }


def command_line():
    return " ".join([Path(sys.argv[0]).name] + sys.argv[1:])


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
