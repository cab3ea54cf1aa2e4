"""mask_detector/training.py: save_model never leaves a half-written model in place of the old one; each phase
stops on its own; the split model trains as the whole model does."""

from pathlib import Path

import pytest


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_save_model_keeps_the_old_file_when_saving_fails(tmp_path, monkeypatch, failure):
    import keras

    from mask_detector.training import save_model

    def save_half_then_fail(model, path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise failure

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    monkeypatch.setattr(keras.Model, "save", save_half_then_fail)
    path = tmp_path / "model.keras"
    path.write_bytes(b"the previous model")
    with pytest.raises(type(failure)):
        save_model(model, path)
    assert path.read_bytes() == b"the previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


@pytest.mark.parametrize("least_gain, epochs_run", [(10.0, [2, 2]), (0.0, [4, 4])])
def test_each_phase_stops_on_its_own_once_its_epochs_stop_mattering(tmp_path, least_gain, epochs_run):
    """A gain below least_gain does not matter: with patience 1 a phase ends after one such epoch, and the
    next phase counts afresh; when every gain matters, each phase runs all its epochs."""
    import keras
    import numpy as np
    import tensorflow as tf

    from mask_detector.training import standard_callbacks, train

    keras.utils.set_random_seed(0)
    features = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    labels = (features[:, 0] > 0).astype("int32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    callbacks = standard_callbacks(1, tmp_path / "logs", least_gain)
    history = None
    for phase, expected in enumerate(epochs_run):
        # A learning rate small enough that every epoch lowers the validation loss a little.
        history = train(model, data, data, 4, 1e-3, callbacks, history)
        assert len(history["val_loss"]) == sum(epochs_run[:phase + 1])


def test_a_step_of_the_split_model_is_a_step_of_the_whole_model():
    """SplitModel runs the layers no phase trains as a LiteRT copy and fits the rest in Keras: it predicts what
    the whole model predicts, and a training step moves the whole model's trainable weights as a step through
    the whole model does, leaving the frozen layers and the BatchNorm statistics as they were."""
    import keras
    import numpy as np
    import tensorflow as tf

    from mask_detector.training import SplitModel, build_model, unfreeze_top

    def unfrozen_model():
        keras.utils.set_random_seed(1)
        model = build_model(96, ("mask", "no_mask", "incorrect"), dropout=0.0)  # no dropout: steps comparable
        unfreeze_top(model)
        return model

    images = np.random.default_rng(0).uniform(0, 255, (8, 96, 96, 3)).astype("float32")
    labels = np.arange(8) % 3
    whole, split_whole, start = unfrozen_model(), unfrozen_model(), unfrozen_model()
    split = SplitModel(split_whole)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    assert np.allclose(split.predict(batches), whole.predict(images, verbose=0), atol=1e-5)

    frozen_outputs, split_labels = split.features(batches)
    assert frozen_outputs.shape[1:] == split.trained.input.shape[1:] and list(split_labels) == list(labels)
    for model, inputs in ((whole, images), (split.trained, frozen_outputs)):
        model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="sparse_categorical_crossentropy")
        model.train_on_batch(inputs, labels)
    # The three models' weights come in the same order; their names differ (dense_1, dense_2, ...).
    trainable_ids = {id(weight) for weight in whole.trainable_weights}
    trainable = [id(weight) in trainable_ids for weight in whole.weights]
    moved, moved_split = ([(after.numpy() - before.numpy()).ravel()
                           for after, before in zip(model.weights, start.weights)] for model in (whole, split_whole))
    assert any(trainable) and not any(np.any(change) for change, train in zip(moved_split, trainable) if not train)
    change = np.concatenate([change for change, train in zip(moved, trainable) if train])
    difference = np.concatenate([a - b for a, b, train in zip(moved_split, moved, trainable) if train])
    assert np.linalg.norm(change) > 0
    assert np.linalg.norm(difference) < 1e-2 * np.linalg.norm(change)
