"""mask_detector/classifier.py: face crops, and model files that are missing, damaged or unsuitable."""

import cv2
import numpy as np
import pytest

from support.scripts import assert_one_line_error, read_records, run_all


def test_box_with_nothing_inside_gives_no_crop():
    from mask_detector.classifier import crop_faces

    image = np.zeros((40, 60, 3), np.uint8)
    boxes = [(10, 10, 10, 30), (20, 5, 15, 30), (-30, -30, -1, -1), (70, 0, 90, 10), (0, 35, 60, 90), (59, 39, 60, 40)]
    crops = crop_faces(image, boxes, 16)
    assert crops[:4] == [None, None, None, None]
    assert crops[4].shape == crops[5].shape == (16, 16, 3)  # cut by the border, or a single pixel


def test_missing_model_file_says_how_to_get_one(model_runs):
    line = assert_one_line_error(model_runs["missing.h5"], "missing.h5 not found")
    assert "`mask-detector fetch` installs the shipped one" in line
    assert "mask-detector train --dataset dataset" in line and "--model PATH" in line


@pytest.mark.parametrize("name", ["random.h5", "truncated.h5", "junk.keras"])
def test_corrupt_model_file(model_runs, name):
    assert_one_line_error(model_runs[name], "cannot load model", f"{name} (damaged or not a Keras model)")
    assert model_runs[name].stdout == ""  # no image was processed with it


def test_model_with_unexpected_input_shape(model_runs):
    assert_one_line_error(model_runs["grey_input.keras"], "takes input of shape (None, 64, 64, 1)", "(batch, N, N, 3)")


def test_model_with_unexpected_output_shape(model_runs):
    assert_one_line_error(model_runs["four_classes.keras"], "gives output of shape (None, 4)", "expected (batch, 2)")


def test_model_with_python_code_is_refused_by_safe_mode(model_runs):
    assert_one_line_error(model_runs["lambda.keras"], "holds Python code (a Lambda layer) and is refused")
    assert not model_runs["marker"].exists(), "the model's code ran"


def _small_litert_models(folder, samples):
    """A small Keras model, its fully integer LiteRT export, and a four-class LiteRT model, in ``folder``."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    spread = keras.initializers.RandomNormal(0, 4)  # answers that differ from face to face
    small = keras.Model(inputs, keras.layers.Dense(2, "softmax", kernel_initializer=spread)(x))
    small.save(folder / "small.keras")
    photos = [cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (64, 64)), cv2.COLOR_BGR2RGB) for p in samples]

    def litert(model, **settings):
        model.export(folder / "saved", format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved"))
        for name, value in settings.items():
            setattr(converter, name, value)
        return converter.convert()

    (folder / "small uint8.tflite").write_bytes(litert(
        small, optimizations=[tf.lite.Optimize.DEFAULT], inference_input_type=tf.uint8,
        inference_output_type=tf.uint8,
        representative_dataset=lambda: ([photo[None].astype(np.float32)] for photo in photos),
    ))
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(4, "softmax")(x)
    (folder / "four classes.tflite").write_bytes(litert(keras.Model(inputs, outputs)))


@pytest.fixture(scope="module")
def unusual_model_runs(default_model, samples, tmp_path_factory):
    """detect_mask_image.py on three sample photos with models made in unusual ways, and with the default model.

    The classic-recipe model is the trained network behind a 224x224 input
    that expects its pixels in [-1, 1], as MobileNetV2's preprocess_input
    makes them: used with the right preprocessing, it must answer as the
    default model does. The raw-score model is the trained network without
    its softmax. The fully integer LiteRT file is exported from a small model.
    """
    import keras

    folder = tmp_path_factory.mktemp("unusual models")
    trained = keras.models.load_model(default_model, compile=False)
    inputs = keras.Input((224, 224, 3))
    side = trained.input_shape[1]
    x = keras.layers.Resizing(side, side)(inputs)
    for layer in trained.layers[2:]:  # everything after the scaling layer
        x = layer(x)
    keras.Model(inputs, x).save(folder / "classic.h5")
    # The same network: it crops faces as the shipped model's card says, so only the preprocessing differs.
    (folder / "classic.json").write_bytes(default_model.with_suffix(".json").read_bytes())

    raw_scores = keras.layers.Dense(trained.output_shape[-1], name="raw_scores")
    model = keras.Model(trained.input, raw_scores(trained.layers[-2].output))
    raw_scores.set_weights(trained.layers[-1].get_weights())
    model.save(folder / "raw scores.keras")
    # Built from the shipped model, it crops and judges faces as its card says.
    (folder / "raw scores.json").write_bytes(default_model.with_suffix(".json").read_bytes())

    _small_litert_models(folder, samples)
    (folder / "UPPER.H5").write_bytes(default_model.read_bytes())
    # Its card goes with it: the card says how the model crops faces and when a face is judged.
    (folder / "UPPER.json").write_bytes(default_model.with_suffix(".json").read_bytes())

    runs = {
        "default": (default_model,),
        "classic": (folder / "classic.h5",),
        "classic, preprocessed": (folder / "classic.h5", "--preprocess", "mobilenet_v2"),
        "raw scores": (folder / "raw scores.keras",),
        "small": (folder / "small.keras",),
        "small uint8": (folder / "small uint8.tflite",),
        "upper case": (folder / "UPPER.H5",),
        "four classes": (folder / "four classes.tflite",),
    }
    results = run_all({
        name: ("detect_mask_image.py", "--image", *samples[:3], "--no-display", "--json", folder / f"{name}.jsonl",
               "--model", *args)
        for name, args in runs.items()
    })
    records = {name: read_records(folder / f"{name}.jsonl") for name in runs if (folder / f"{name}.jsonl").exists()}
    return results, records


def probabilities(records):
    return np.array([face["mask_probability"] for record in records.values() for face in record["faces"]])


def test_classic_recipe_model_is_refused_with_how_to_use_it(unusual_model_runs):
    """Once: it called every face `mask` at 0.99-1.0, because its pixels were not scaled."""
    results, _ = unusual_model_runs
    assert_one_line_error(
        results["classic"], "has no scaling layer", "run with --preprocess mobilenet_v2, or --preprocess none"
    )


def test_classic_recipe_model_with_its_preprocessing_answers_right(unusual_model_runs):
    results, records = unusual_model_runs
    assert results["classic, preprocessed"].returncode == 0, results["classic, preprocessed"].stderr[-3000:]
    classic, default = probabilities(records["classic, preprocessed"]), probabilities(records["default"])
    assert len(default) >= 8 and len(classic) == len(default)
    assert np.mean((classic >= 0.5) == (default >= 0.5)) >= 0.85
    assert np.median(np.abs(classic - default)) < 0.05


def test_raw_scores_get_softmax_with_a_warning(unusual_model_runs):
    """Once: `"mask_probability": 15.18` and "Mask 1518.2%" before."""
    results, records = unusual_model_runs
    result = results["raw scores"]
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "gives raw scores, not probabilities" in warnings[0]
    np.testing.assert_allclose(probabilities(records["raw scores"]), probabilities(records["default"]), atol=2e-4)


def test_fully_integer_litert_model(unusual_model_runs):
    """Once: uint8 input and output failed as `unexpected ValueError`; now quantised both ways."""
    results, records = unusual_model_runs
    assert results["small uint8"].returncode == 0, results["small uint8"].stderr[-3000:]
    float_model, integer_model = probabilities(records["small"]), probabilities(records["small uint8"])
    assert len(float_model) >= 8 and len(integer_model) == len(float_model)
    assert np.all((0 <= integer_model) & (integer_model <= 1))
    assert float_model.std() > 0.05  # the small model's answers differ from face to face, so agreement means something
    assert np.max(np.abs(integer_model - float_model)) < 0.1


def test_model_suffix_in_upper_case(unusual_model_runs):
    """Once: `--model UPPER.H5` was refused."""
    results, records = unusual_model_runs
    assert results["upper case"].returncode == 0, results["upper case"].stderr[-3000:]
    def without_settings(records):  # the settings name the model file, which differs
        return {image: {k: v for k, v in record.items() if k != "settings"} for image, record in records.items()}

    assert without_settings(records["upper case"]) == without_settings(records["default"])


def test_shapes_in_messages_are_plain_numbers(unusual_model_runs):
    results, _ = unusual_model_runs
    line = assert_one_line_error(results["four classes"], "gives output of shape (1, 4); expected (batch, 2)")
    assert "np." not in line
