"""mask_detector/training.py: save_model never leaves a half-written model in place of the old one; each phase
stops on its own."""

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
