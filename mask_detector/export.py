"""Convert the Keras classifier to a LiteRT (.tflite) file for small devices.

Two kinds: ``float16`` halves the file and keeps float arithmetic; ``int8``
quantizes weights and activations, calibrated on real training images so
the value ranges it picks match the faces it will see. Both keep float32
input and output, so the file is a drop-in ``--model`` for the scripts.
"""

import tempfile

from mask_detector.errors import UserError, first_line
from mask_detector.quiet import native_stderr_silenced

KINDS = ("float16", "int8")


def calibration_batches(folders, image_size, count, seed=0, aligned=False):
    """Up to ``count`` training images, one at a time, as float32 0-255 RGB batches of one.

    They go through the same framing and loading as training (frame_faces,
    make_dataset), so the ranges int8 is calibrated on are the ranges the
    model was trained on.
    """
    import numpy as np

    from mask_detector.data import find_images, frame_faces, make_dataset

    images = find_images(folders, warn=lambda message: None)
    chosen = np.random.default_rng(seed).permutation(len(images.paths))[:count].tolist()
    for batch, _ in make_dataset(frame_faces(images.subset(chosen), report=lambda message: None), image_size,
                                 batch_size=1, aligned=aligned):
        yield [batch.numpy()]


def convert(model_path, kind, calibration_folders=(), calibration_count=200):
    """Return the bytes of a .tflite file for the Keras model at ``model_path``."""
    if kind not in KINDS:
        raise UserError(f"unknown export kind {kind!r}; choose one of {', '.join(KINDS)}")
    import tensorflow as tf

    from mask_detector.classifier import MaskClassifier

    classifier = MaskClassifier(model_path)  # checks the file and its shapes
    if classifier.backend != "keras":
        raise UserError(f"{model_path} is already a LiteRT file; export from the .h5 or .keras model")
    model, size = classifier.keras_model, classifier.input_size
    with tempfile.TemporaryDirectory() as scratch:
        # A SavedModel freezes the weights into the graph the converter reads; the batch
        # dimension stays None, so the runtime can resize the input to the number of faces.
        model.export(scratch, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch)
        return _convert(converter, kind, size, calibration_folders, calibration_count, classifier.crop == "aligned")


def _convert(converter, kind, size, calibration_folders, calibration_count, aligned=False):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    else:
        if not calibration_folders:
            raise UserError("int8 export needs calibration images: pass --dataset DIR")
        converter.representative_dataset = lambda: calibration_batches(calibration_folders, size, calibration_count,
                                                                       aligned=aligned)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        with native_stderr_silenced():  # the converter's "fully_quantize: 0, inference_type: 6, ..." line
            return converter.convert()
    except Exception as error:  # the converter raises many internal types
        raise UserError(f"LiteRT conversion failed: {first_line(error)}") from None
