"""mask_detector/training.py: save_model never leaves a half-written model in place of the old one."""

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
