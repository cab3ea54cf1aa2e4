"""Convert the Keras classifier to a LiteRT (.tflite) file for small devices.

Two kinds: ``float16`` halves the file and keeps float arithmetic; ``int8``
quantizes weights and activations, calibrated on real training images so
the value ranges it picks match the faces it will see. Both keep float32
input and output, so the file is a drop-in ``--model`` for the scripts.

Training uses a third, in memory: LiteRTCopy, a float32 copy of a model whose
weights stay as they are, which computes the same outputs several times
faster than Keras on a CPU.
"""

import tempfile

import numpy as np

from mask_detector.errors import UserError, first_line
from mask_detector.files import write_bytes_atomically
from mask_detector.quiet import import_tensorflow, native_stderr_silenced

KINDS = ("float16", "int8")


def calibration_images(folders):
    """The images int8 is calibrated on (a data.ImageList), found and checked before any conversion.

    A missing folder, one without class folders or without usable images is
    a UserError now, not after the converter has run for half a minute.
    """
    from mask_detector.data import find_images

    if not folders:
        raise UserError("int8 export needs calibration images: pass --dataset DIR")
    return find_images(folders, report=lambda message: None)


def calibration_batches(images, image_size, count, seed=0, aligned=False):
    """Up to ``count`` of ``images`` (see calibration_images), one at a time, as float32 0-255 RGB batches of one.

    They go through the same face finding and loading as training (locate_faces,
    make_dataset), so the ranges int8 is calibrated on are the ranges the
    model was trained on.
    """
    import numpy as np

    from mask_detector.data import locate_faces, make_dataset

    chosen = np.random.default_rng(seed).permutation(len(images.paths))[:count].tolist()
    for batch, _ in make_dataset(locate_faces(images.subset(chosen), report=lambda message: None), image_size,
                                 batch_size=1, aligned=aligned):
        yield [batch.numpy()]


def convert(model_path, kind, calibration=None, calibration_count=200):
    """Return the bytes of a .tflite file for the Keras model at ``model_path``.

    ``calibration``: for int8, the images of calibration_images.
    """
    if kind not in KINDS:
        raise UserError(f"unknown export kind {kind!r}; choose one of {', '.join(KINDS)}")
    from mask_detector.classifier import MaskClassifier

    import_tensorflow()  # quietly, before the classifier loads Keras
    classifier = MaskClassifier(model_path)  # checks the file and its shapes
    if classifier.backend != "keras":
        raise UserError(f"{model_path} is already a LiteRT file; export from the .h5 or .keras model")
    return litert_bytes(classifier.keras_model, lambda converter: _configure(
        converter, kind, classifier.input_size, calibration, calibration_count, classifier.crop == "aligned"))


def litert_bytes(model, configure=None):
    """The .tflite bytes of the Keras ``model``: float32 as it is, or as ``configure(converter)`` sets it."""
    tf = import_tensorflow()
    with tempfile.TemporaryDirectory() as scratch:
        # A SavedModel freezes the weights into the graph the converter reads; the batch
        # dimension stays None, so the runtime can resize the input to the number of faces.
        model.export(scratch, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch)
        if configure:
            configure(converter)
        try:
            with native_stderr_silenced():  # the converter's "fully_quantize: 0, inference_type: 6, ..." line
                return converter.convert()
        except Exception as error:  # the converter raises many internal types
            raise UserError(f"LiteRT conversion failed: {first_line(error)}") from None


def _configure(converter, kind, size, calibration, calibration_count, aligned=False):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    else:
        if calibration is None:
            raise UserError("int8 export needs calibration images: pass --dataset DIR")
        converter.representative_dataset = lambda: calibration_batches(calibration, size, calibration_count,
                                                                       aligned=aligned)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


class LiteRTCopy:
    """A float32 LiteRT copy of a Keras model with one input and one output, run by XNNPACK.

    On a 2-core CPU MobileNetV2 at 160 px takes about 2.5 ms an image this
    way against 11 in Keras (benchmarks/bench_training.py --step-costs), with the
    same outputs to about 1e-6 of their size. The copy holds the weights the
    model had when it was made: training makes it out of date, except for a
    part that stays frozen.
    """

    def __init__(self, model, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        from mask_detector.classifier import compute_threads

        with native_stderr_silenced():  # its "Created ... XNNPACK delegate" line
            self._interpreter = Interpreter(model_content=litert_bytes(model),
                                            num_threads=threads or compute_threads())
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_shape = None

    def __call__(self, batch):
        """The outputs for one batch (a float32 array), as a new array."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.shape != self._batch_shape:
            self._interpreter.resize_tensor_input(self._input, batch.shape)
            with native_stderr_silenced():  # the delegate's line again
                self._interpreter.allocate_tensors()
            self._batch_shape = batch.shape
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def carry_card(model_path, output):
    """Give an exported copy its model's card, unless it finds one already; a line saying what was done.

    The card says how the model crops a face (aligned or at its box) and when
    it judges one: a copy that found no card would crop faces another way and
    answer wrongly. A copy beside its model (mask_detector_float16.tflite)
    already shares the model's card; a card already at the copy's place is
    never replaced.
    """
    from mask_detector.classifier import card_path

    source, target = card_path(model_path), card_path(output)
    if not source.is_file() or target.resolve() == source.resolve():
        return None
    if target.exists():
        if target.read_bytes() == source.read_bytes():
            return None
        return f"warning: {output} will use the card {target}, which is not {model_path}'s; copy {source} there"
    write_bytes_atomically(source.read_bytes(), target)
    return f"wrote {target.resolve()} (the model's card, which says how it crops and judges faces)"
