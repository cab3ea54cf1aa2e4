"""Training the MobileNetV2 mask classifier, as visible steps.

    model = build_model(size)                                   # 1. ImageNet backbone, frozen, new head
    split = SplitModel(model)                                   #    (its never trained layers, fast)
    history = train_head(split, views, validation, epochs,      # 2. train the head on the backbone's
                         learning_rate)                         #    features, computed once
    unfreeze_top(model)                                         # 3. unfreeze the backbone's top blocks
    history = fine_tune(split, data, validation, epochs,        # 4. fine-tune them, gently
                        learning_rate / 100, history=history)
    calibrate(model, probabilities_by_size(split, crops), ...)  # 5. honest probabilities, and when to judge
    save_model(model, path); plot_history(history, ...); model_card(...)
"""

import contextlib
import datetime
import logging
import platform
import signal
import sys
import time
from pathlib import Path

import keras
import numpy as np

from mask_detector import FETCH_COMMAND
from mask_detector.labels import CLASS_NAMES
from mask_detector.assets import backbone_weights_path
from mask_detector.classifier import softmax
from mask_detector.errors import UserError
from mask_detector.export import LiteRTCopy
from mask_detector.files import atomic_path, write_json_atomically


def set_seed(seed):
    """Seed Python, numpy and TensorFlow, for a repeatable split, head and augmentation."""
    keras.utils.set_random_seed(seed)


def standard_callbacks(patience, log_dir, least_gain=0.0):
    """End a phase after ``patience`` epochs that did not lower the validation loss by ``least_gain``,
    keeping its best weights, and log for TensorBoard. Keras' EarlyStopping starts afresh at each fit, so
    each phase counts its own epochs."""
    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, min_delta=least_gain,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=str(log_dir)),
    ]


# The layer whose output the head starts from: the backbone's features, averaged over the image.
FEATURES = "pooled_features"


def build_model(image_size, class_names=CLASS_NAMES, weights="imagenet", dropout=0.5):
    """MobileNetV2 (ImageNet, frozen) with a new head, softmax over ``class_names``.

    The model takes raw 0-255 RGB pixels: scaling to MobileNetV2's [-1, 1]
    happens inside, so whoever loads the file needs no preprocessing code.
    """
    if weights == "imagenet":
        # The no-top weights do not depend on the input size, so the 224 file
        # serves every size; Keras would otherwise look for a file per size.
        weights = backbone_weights_path()
        if not weights.is_file():
            raise UserError(
                f"MobileNetV2 ImageNet weights not found at {weights}; run `{FETCH_COMMAND}`"
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
    x = keras.layers.GlobalAveragePooling2D(name=FEATURES)(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(len(class_names), activation="softmax", name="mask_classes")(x)
    return keras.Model(inputs, outputs, name="mask_classifier")


def class_weights(labels):
    """A weight per class, inversely proportional to its share of the training images.

    So that a class with fewer images (masks worn wrongly) weighs as much in
    the loss as the others, without choosing numbers by hand.
    """
    counts = np.bincount(labels)
    return {label: len(labels) / (len(counts) * count) for label, count in enumerate(counts) if count}


def train(model, train_data, validation_data, epochs, learning_rate, callbacks=(), history=None, weights=None):
    """Compile and fit for ``epochs`` more epochs; return ``history`` extended by them.

    Each phase compiles anew, since the optimizer must see which weights are
    trainable now; epochs are numbered on from the previous phase, so the
    logs and EarlyStopping see one run.
    """
    history = {key: list(values) for key, values in (history or {}).items()}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = len(history.get("loss", []))
    result = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=start + epochs,
        initial_epoch=start,
        callbacks=list(callbacks),
        verbose=1 if sys.stdout.isatty() else 2,
        shuffle=False,  # the tf.data pipeline shuffles
        class_weight=weights,
    )
    for key, values in result.history.items():
        history.setdefault(key, []).extend(values)
    return history


def train_head(split, train_views, validation_data, epochs, learning_rate, callbacks=(), weights=None, seed=42,
               batch_size=32):
    """2. Train the new head alone, on the frozen backbone's features of each image, computed once.

    While the backbone is frozen, an epoch through the whole model spends
    nearly all its time computing features that are the same every epoch
    but for the augmentation; so ``train_views`` (one augmented epoch of
    batches) and ``validation_data`` go through the backbone once, and the
    head's epochs take a fraction of a second. ``split``: the SplitModel;
    the head shares its weights. Returns the history, as train does.
    """
    import tensorflow as tf

    train_features = tf.data.Dataset.from_tensor_slices(split.features(train_views, pooled=True))
    train_features = train_features.shuffle(len(train_features), seed=seed, reshuffle_each_iteration=True)
    validation_features = tf.data.Dataset.from_tensor_slices(split.features(validation_data, pooled=True))
    return train(_head_of(split.model), train_features.batch(batch_size), validation_features.batch(batch_size),
                 epochs, learning_rate, callbacks, weights=weights)


def fine_tune(split, train_data, validation_data, epochs, learning_rate, callbacks=(), history=None, weights=None,
              batch_size=32):
    """4. Fine-tune the backbone's unfrozen top (unfreeze_top) with the head; returns the history, as train does.

    Keras fits only ``split.trained``, on the output of the layers below,
    which the SplitModel computes for each augmented batch in the input
    pipeline: the same training step as through the whole model, in half
    the time. The validation images go through the frozen layers once.
    """
    import tensorflow as tf

    validation = tf.data.Dataset.from_tensor_slices(split.features(validation_data)).batch(batch_size)
    return train(split.trained, split.through_frozen(train_data), validation, epochs, learning_rate, callbacks,
                 history, weights)


def _head_of(model):
    """The layers after FEATURES as a model of their own, on the features: the same layers, the same weights."""
    features = model.get_layer(FEATURES)
    x = inputs = keras.Input(features.output.shape[1:], name=FEATURES)
    for layer in model.layers[model.layers.index(features) + 1:]:
        x = layer(x)
    return keras.Model(inputs, x, name="head")


def _backbone_of(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


# Fine-tuning trains the backbone from this layer on (unfreeze_top). The layers before it keep their
# ImageNet weights in every phase, so SplitModel computes them once per image and epoch, outside Keras.
FINE_TUNED_FROM = "block_13_expand"


class SplitModel:
    """A model from build_model, cut before FINE_TUNED_FROM, for training: the layers before the cut, which no
    phase trains (``frozen``), computed by their LiteRTCopy (``frozen_copy``: about four times as fast as Keras
    on a CPU), and the layers from the cut on (``trained``); all share the weights of ``model``, the whole."""

    def __init__(self, model):
        import tensorflow as tf

        base = _backbone_of(model)
        at = model.layers.index(base)
        cut = base.get_layer(FINE_TUNED_FROM).input
        self.frozen = keras.Model(model.inputs, keras.Model(base.inputs, cut)(model.layers[at - 1].output))
        self.frozen_copy = LiteRTCopy(self.frozen)
        x = inputs = keras.Input(cut.shape[1:], name="frozen_output")
        x = keras.Model(cut, base.output)(x, training=False)  # BatchNorm statistics stay fixed, as in build_model
        outputs = {}
        for layer in model.layers[at + 1:]:
            x = outputs[layer.name] = layer(x)
        self.model, self.trained = model, keras.Model(inputs, x, name="trained")
        # Traced once, for the training and the validation features alike.
        self._pooled = tf.function(keras.Model(inputs, outputs[FEATURES]), reduce_retracing=True)

    def through_frozen(self, batches):
        """tf.data (image batch, label batch) -> (the frozen layers' output batch, label batch)."""
        import tensorflow as tf

        def through(images, labels):
            # stateful: tf.data must not run the copy on two batches at once
            outputs = tf.numpy_function(self.frozen_copy, [images], tf.float32, stateful=True)
            outputs.set_shape([None, *self.trained.input.shape[1:]])
            return outputs, labels

        return batches.map(through).prefetch(1)

    def features(self, batches, pooled=False):
        """(outputs, labels) for every image of ``batches`` (image batch, label batch): the frozen layers'
        outputs, or with ``pooled``, the backbone's (FEATURES)."""
        tail = self._pooled if pooled else np.asarray
        outputs, labels = [], []
        for images, label in batches:
            outputs.append(np.asarray(tail(self.frozen_copy(images))))
            labels.append(label.numpy())
        return np.concatenate(outputs), np.concatenate(labels)

    def predict(self, batches):
        """The model's outputs for every image of ``batches`` (image batch, label batch)."""
        return self.trained.predict(self.through_frozen(batches), verbose=0)


def unfreeze_top(model, layers_from=FINE_TUNED_FROM):
    """Make the backbone trainable from ``layers_from`` on; earlier layers stay frozen."""
    base = _backbone_of(model)
    base.trainable = True
    trainable = False
    for layer in base.layers:
        trainable = trainable or layer.name == layers_from
        # BatchNorm stays frozen: small fine-tuning sets would corrupt its statistics.
        layer.trainable = trainable and not isinstance(layer, keras.layers.BatchNormalization)


# Calibration looks at the validation split at these face sizes (the longer side in pixels): street
# cameras meet faces from about 10 pixels up. The images as they are (0) stand for faces at least as
# large as the classifier's input, seen at full resolution.
CALIBRATION_SIDES = (10, 12, 14, 16, 20, 24, 32, 48, 64, 96, 0)
# A flag is what people act on: at each judged face size, at most this share of the validation faces
# that wear a mask correctly may be flagged, from each size on (longer side in pixels) ... A small face
# is hard to judge; a large, sharp one is not, and there a flag must be almost always right. Validation
# faces shrunk to street sizes are harder than street photos' faces of those sizes (at 16-24 px they flag
# two to three times as many masked faces as the annotated street photos do): 10 % here came to about 2 %
# there, 5 % and 20 % to 1.4 % and 2.9 %, catching fewer and more of the unmasked (README, "Trusting a flag").
MOST_FALSE_ALARMS = ((0, 0.10), (32, 0.05), (64, 0.02), (96, 0.01))
# ... and a size is judged only when, with the flag probability that keeps to that, the flags still
# catch at least this share of the validation faces without a mask or with one worn wrongly.
LEAST_CAUGHT = 0.5
FLAG_PROBABILITIES = np.round(np.arange(0.5, 0.991, 0.01), 2)
# A pose bin is judged only when the validation split shows the model this many faces there, of each of
# masked and violations: fewer say nothing about how it judges such faces.
LEAST_FACES_PER_POSE_BIN = 30


def most_false_alarms_at(side):
    """The share of masked faces a flag may catch at this face size (MOST_FALSE_ALARMS)."""
    return next(share for size, share in reversed(MOST_FALSE_ALARMS) if side >= size)


def flagged(probabilities, class_names, flag_probability):
    """Which faces are flagged: the likeliest class is a violation, and all violations together reach
    ``flag_probability`` (one number, or one per face)."""
    mask = list(class_names).index("mask")
    return (probabilities.argmax(axis=1) != mask) & (1 - probabilities[:, mask] >= flag_probability)


def choose_judging(by_size, truth, class_names, image_size, poses=None):
    """Per face size, the probability a flag needs, and the smallest size judged; then per pose bin the
    same, and which poses are judged at all; on the validation split.

    At each size the flag probability is the least that flags at most
    most_false_alarms_at(size) of the masked faces. Sizes from the smallest at
    which those flags still catch LEAST_CAUGHT of the violations (and every
    larger size does too) are judged; smaller faces are not. With ``poses``
    (a pose.Pose or None per validation face), sizes are judged on the
    frontal faces alone, and each bin of each angle (judging.POSE_BINS) then
    gets its own probability: see choose_pose_judging.
    """
    truth = np.asarray(truth)
    masked = truth == list(class_names).index("mask")
    frontal = np.ones(len(truth), dtype=bool) if poses is None else frontal_faces(poses)
    if not (frontal & masked).any() or not (frontal & ~masked).any():
        frontal = np.ones(len(truth), dtype=bool)  # no landmarks found (faces not located): every face
    table = []
    for side in sorted(by_size, key=lambda side: side or image_size):
        probabilities = by_size[side][frontal]
        most = most_false_alarms_at(side or image_size)
        flag_probability = next((float(t) for t in FLAG_PROBABILITIES
                                 if flagged(probabilities, class_names, t)[masked[frontal]].mean() <= most),
                                float(FLAG_PROBABILITIES[-1]))
        flags = flagged(probabilities, class_names, flag_probability)
        table.append({"face_size": int(side or image_size), "flag_probability": flag_probability,
                      "most_false_alarms": most, "masked_flagged": round(float(flags[masked[frontal]].mean()), 4),
                      "violations_flagged": round(float(flags[~masked[frontal]].mean()), 4)})
    judged_from = len(table)
    while judged_from > 0 and table[judged_from - 1]["violations_flagged"] >= LEAST_CAUGHT:
        judged_from -= 1
    judged = table[judged_from:] or table[-1:]
    choice = {
        "min_face_size": judged[0]["face_size"],
        "flag_probabilities": {str(row["face_size"]): row["flag_probability"] for row in judged},
        "most_false_alarms": {str(size): share for size, share in MOST_FALSE_ALARMS},
        "least_caught": LEAST_CAUGHT,
        "faces": "frontal" if poses is not None and not frontal.all() else "all",
        "by_face_size": table,
    }
    if poses is not None and not frontal.all():
        choice |= choose_pose_judging(by_size, truth, class_names, image_size, poses, judged)
    return choice


def pose_bins_of(poses, name):
    """Each face's bin of one angle (judging.POSE_BINS), -1 where its pose is not known."""
    from mask_detector.judging import POSE_BINS, pose_bin

    return np.array([pose_bin(getattr(pose, name), POSE_BINS[name]) if pose is not None else -1 for pose in poses])


def frontal_faces(poses):
    """Which faces are in the first bin of every angle: seen from the front, upright."""
    from mask_detector.judging import POSE_BINS

    return np.logical_and.reduce([pose_bins_of(poses, name) == 0 for name in POSE_BINS])


def choose_pose_judging(by_size, truth, class_names, image_size, poses, judged_sizes):
    """Each pose bin's flag probability, or None where faces so turned or tilted are not judged.

    Each angle is looked at alone: the faces of one of its bins are those
    in that bin and in the first bin of the other angles. They are flagged,
    at every judged size, by the larger of their size's probability and
    the bin's. A bin's is the least that flags no larger share of its masked
    faces than the frontal faces are flagged (a turned face is judged no more
    loosely than a frontal one); a bin with fewer than LEAST_FACES_PER_POSE_BIN
    masked or violating faces, or whose flags then catch under LEAST_CAUGHT
    of its violations, is not judged.
    """
    from mask_detector.judging import POSE_BINS

    masked = truth == list(class_names).index("mask")
    sides = [side for side in by_size if int(side or image_size) >= judged_sizes[0]["face_size"]]
    needed_by_side = {int(row["face_size"]): row["flag_probability"] for row in judged_sizes}
    probabilities = np.concatenate([by_size[side] for side in sides])
    size_needed = np.concatenate([np.full(len(truth), needed_by_side[int(side or image_size)]) for side in sides])
    tiled_masked = np.tile(masked, len(sides))
    bins = {name: pose_bins_of(poses, name) for name in POSE_BINS}
    frontal = np.tile(np.logical_and.reduce([by_bin == 0 for by_bin in bins.values()]), len(sides))
    frontal_rate = float(flagged(probabilities[frontal], class_names, size_needed[frontal])[
        tiled_masked[frontal]].mean())
    chosen, table = {}, []
    for name, edges in POSE_BINS.items():
        others_frontal = np.logical_and.reduce([bins[other] == 0 for other in POSE_BINS if other != name])
        chosen[name] = []
        for index in range(len(edges) - 1):
            faces = (bins[name] == index) & others_frontal
            inside = np.tile(faces, len(sides))
            row = {"angle": name, "degrees": f"{edges[index]}-{edges[index + 1]}",
                   "masked_faces": int((faces & masked).sum()), "violating_faces": int((faces & ~masked).sum())}
            probability = None
            if min(row["masked_faces"], row["violating_faces"]) >= LEAST_FACES_PER_POSE_BIN:
                for candidate in FLAG_PROBABILITIES:
                    flags = flagged(probabilities[inside], class_names, np.maximum(size_needed[inside], candidate))
                    masked_flagged = flags[tiled_masked[inside]].mean()
                    if masked_flagged <= frontal_rate:
                        break
                row |= {"masked_flagged": round(float(masked_flagged), 4),
                        "violations_flagged": round(float(flags[~tiled_masked[inside]].mean()), 4)}
                if masked_flagged <= frontal_rate and row["violations_flagged"] >= LEAST_CAUGHT:
                    probability = float(candidate)
            row["flag_probability"] = probability
            chosen[name].append(probability)
            table.append(row)
    return {"pose_probabilities": chosen, "frontal_masked_flagged": round(frontal_rate, 4), "by_pose": table}


def probabilities_by_size(split, crops, batch_size, sides=CALIBRATION_SIDES):
    """{face side: (n, classes) probabilities} of face ``crops`` (data.face_crops) shown at each face size,
    by the SplitModel ``split``."""
    from mask_detector.data import crop_batches

    return {side: split.predict(crop_batches(crops, batch_size=batch_size, face_side=side)) for side in sides}


def _negative_log_likelihood(logits, truth, temperature):
    scaled = logits / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    log_probabilities = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(truth)), truth].mean())


def fit_temperature(probabilities, truth):
    """The temperature T that makes softmax(log p / T) fit the truth best (least log loss).

    One number for the whole model: it changes how sure the probabilities
    are, never which class is likeliest (temperature scaling, Guo et al. 2017).
    """
    logits = logits_of(probabilities)
    candidates = np.round(np.arange(0.5, 5.0, 0.01), 2)
    losses = [_negative_log_likelihood(logits, truth, t) for t in candidates]
    return float(candidates[int(np.argmin(losses))])


def logits_of(probabilities):
    """Log-probabilities: softmax gives back the probabilities from them, and divides them by T."""
    return np.log(np.clip(probabilities, 1e-7, 1.0))


def apply_temperature(probabilities, temperature):
    return softmax(logits_of(probabilities) / temperature)


def fold_temperature(model, temperature, layer="mask_classes"):
    """Divide the last layer's weights by T, so the saved model itself gives calibrated probabilities.

    softmax((Wx + b) / T) = softmax((W / T) x + b / T): every copy of the model
    (.h5, .keras, LiteRT) then answers calibrated, with no extra step at run time.
    """
    dense = model.get_layer(layer)
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel / temperature, bias / temperature])


def expected_calibration_error(probabilities, truth, bins=10):
    """The gap between confidence and accuracy, averaged over confidence bins weighted by their size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def calibrate(model, by_size, truth, class_names, image_size, poses=None):
    """5. Calibrate on the validation split: fold a temperature into the model, then choose when to judge.

    ``by_size`` holds the validation probabilities at each face size
    (probabilities_by_size), before calibration, and ``poses`` each validation face's pose (pose.Pose,
    or None where its landmarks were not found). Returns what the card keeps
    and the reliability figures before and after.
    """
    truth = np.asarray(truth)
    pooled = np.concatenate(list(by_size.values()))
    pooled_truth = np.tile(truth, len(by_size))
    temperature = fit_temperature(pooled, pooled_truth)
    fold_temperature(model, temperature)
    calibrated = {side: apply_temperature(p, temperature) for side, p in by_size.items()}
    logits = logits_of(pooled)
    after = np.concatenate(list(calibrated.values()))
    card = {
        "temperature": temperature,
        "method": "temperature scaling on the validation split, shown at face sizes "
                  + ", ".join(f"{side} px" if side else "as they are" for side in by_size),
        "validation_log_loss": {"before": round(_negative_log_likelihood(logits, pooled_truth, 1.0), 4),
                                "after": round(_negative_log_likelihood(logits, pooled_truth, temperature), 4)},
        "validation_expected_calibration_error": {"before": round(expected_calibration_error(pooled, pooled_truth), 4),
                                                  "after": round(expected_calibration_error(after, pooled_truth), 4)},
    }
    judging = choose_judging(calibrated, truth, class_names, image_size, poses)
    return card, judging, (pooled, after, pooled_truth)


def plot_reliability(before, after, truth, path, bins=10):
    """Confidence against accuracy, before and after calibration: a calibrated model lies on the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    edges = np.linspace(0, 1, bins + 1)
    for probabilities, name in ((before, "before"), (after, "after")):
        confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == truth
        points = [(confidence[(confidence > lo) & (confidence <= hi)].mean(),
                   correct[(confidence > lo) & (confidence <= hi)].mean())
                  for lo, hi in zip(edges[:-1], edges[1:]) if ((confidence > lo) & (confidence <= hi)).any()]
        axis.plot(*zip(*points), marker="o",
                  label=f"{name} (ECE {expected_calibration_error(probabilities, truth):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    axis.set_xlabel("confidence (probability of the likeliest class)")
    axis.set_ylabel("accuracy")
    axis.set_title("Reliability on the validation split, all face sizes")
    axis.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary)
    plt.close(figure)


def score_on_test_split(split, test_data, truth, class_names=CLASS_NAMES):
    """The classification report on the test split, by the SplitModel ``split``: (text to print, figures
    for the card)."""
    from sklearn.metrics import balanced_accuracy_score, classification_report

    probabilities = split.predict(test_data)
    predicted = probabilities.argmax(axis=1)
    truth = np.asarray(truth)
    labels = list(range(len(class_names)))
    # zero_division: a class never predicted scores 0 precision, said in the table, not in a library warning.
    text = classification_report(truth, predicted, labels=labels, target_names=list(class_names), digits=4,
                                 zero_division=0)
    report = classification_report(truth, predicted, labels=labels, target_names=list(class_names),
                                   output_dict=True, zero_division=0)
    figures = {
        "accuracy": round(report["accuracy"], 4),
        "balanced_accuracy": round(balanced_accuracy_score(truth, predicted), 4),
        **{
            name: {k: round(v, 4) for k, v in report[name].items() if k != "support"}
            | {"support": int(report[name]["support"])}
            for name in class_names
        },
    }
    return text, figures


class _LegacyFormatNotice(logging.Filter):
    """Hide Keras' notice that .h5 is a legacy format: this project writes .h5 on purpose, beside .keras."""

    def filter(self, record):
        return "HDF5 file" not in record.getMessage()


def save_model(model, path):
    """Save the model atomically: an interrupted save never leaves a half-written file.

    Only layers and weights are written, not the optimizer's state: the file
    is for inference, and the state would double its size once the
    backbone's top is trainable.
    """
    # A new, uncompiled model over the same layers and weights has no optimizer to save.
    inference_model = keras.Model(model.inputs, model.outputs, name=model.name)
    notice_filter = _LegacyFormatNotice()
    logging.getLogger("absl").addFilter(notice_filter)
    try:
        with atomic_path(path) as temporary:
            inference_model.save(temporary)
    finally:
        logging.getLogger("absl").removeFilter(notice_filter)


class InterruptBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C stops training at the end of the batch in hand, as a KeyboardInterrupt raised there.

    Python's own handler raises wherever the main thread happens to be; in
    training that can be a finaliser of an object TensorFlow frees as it goes,
    where the interrupt is printed as "ignored" and lost, and training went on
    to its end. Used as a context manager around the fitting.
    """

    def __init__(self):
        super().__init__()
        self.pressed = False
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._press)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _press(self, signum, frame):
        self.pressed = True

    def on_train_batch_end(self, batch, logs=None):
        if self.pressed:
            raise KeyboardInterrupt

    on_test_batch_end = on_train_batch_end


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the best model so far on disk, written atomically, for interrupted runs. ``whole``: the model
    written, when the one being fit is a part of it sharing its weights (train_head's head, fine_tune's
    SplitModel.trained)."""

    def __init__(self, path, monitor="val_loss"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = np.inf
        self.saved = False
        self.whole = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best = value
            save_model(self.whole or self.model, self.path)
            self.saved = True


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
    with atomic_path(path) as temporary:
        figure.savefig(temporary)
    plt.close(figure)


def model_card(output, datasets, seed, image_size, image_counts, history, seconds, test_figures,
               class_names=CLASS_NAMES, crop="box"):
    """What the model is, how it was made and how it scored: the JSON saved beside it."""
    return {
        "model": output.name,
        "model_keras": output.with_suffix(".keras").name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "datasets": [str(d) for d in datasets],
        "seed": seed,
        "input": {"size": [image_size, image_size, 3], "color": "RGB", "pixel_range": [0, 255]},
        "class_names": list(class_names),
        # How a face is cut for the model: at the face detector's "box", or "aligned" by its five landmarks.
        "crop": crop,
        "output": "softmax over class_names",
        "images": image_counts,
        "epochs_trained": len(history.get("loss", [])),
        "training_seconds": round(seconds, 1),
        "test_split": test_figures,
        "versions": environment_versions(),
    }


def reliability_path_for(output):
    """Where the reliability figure goes: beside the model."""
    return output.with_name(f"{output.stem}_reliability.png")


def plot_path_for(output):
    """Where the plot of the curves goes unless told: beside the model."""
    return output.with_name(f"{output.stem}_training.png")


def save_outputs(model, history, card, output, plot=None):
    """The model as .h5 and .keras, the plot of its curves and its card, each written atomically; their paths."""
    paths = [output, output.with_suffix(".keras"), output.with_suffix(".json"), Path(plot or plot_path_for(output))]
    output.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, paths[0])
    save_model(model, paths[1])
    write_json_atomically(card, paths[2])
    plot_history(history, paths[3])
    return paths


def environment_versions():
    import cv2
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "opencv": cv2.__version__,
    }


class StepTimes:
    """The wall time of each step of a training run, said at its end: where the time goes. ``started``: the
    perf_counter reading the run counts from (the script's first line), so that imports are a step too."""

    def __init__(self, started=None):
        self.started = time.perf_counter() if started is None else started
        self.seconds = {}

    @contextlib.contextmanager
    def step(self, name):
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - begun

    def line(self):
        total = time.perf_counter() - self.started
        steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.seconds.items())
        return f"seconds by step: {steps}; other {total - sum(self.seconds.values()):.1f}; all {total:.1f}"
