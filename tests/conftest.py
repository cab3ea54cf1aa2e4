"""The fixtures the tests share; the helpers they use are in support/ beside this file.

The tests need the set-up step to have run (`make test` does it): the
detector files in face_detector/, the datasets in dataset/, the annotated
photos in evaluation/ and the sample photos in samples/.
"""

import zipfile

import numpy as np
import pytest

from mask_detector import DEFAULT_MODEL
from support.media import make_clip
from support.scripts import SAMPLES, VOC_DEV, require, run_all
from support.xserver import virtual_display


@pytest.fixture(scope="session", autouse=True)
def own_cache_folder(tmp_path_factory):
    """The scripts' cache (training's located faces) in a folder of the test run, not the user's."""
    import os

    folder = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def samples():
    paths = sorted(require(SAMPLES).glob("*.jpg"))
    assert paths, "no sample photos"
    return paths


@pytest.fixture(scope="session")
def default_model():
    return require(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def voc_dev():
    return require(VOC_DEV)


@pytest.fixture(scope="module")
def clip(samples, tmp_path_factory):
    """The sample photos as a 640x480 mp4 clip, a few frames each (the video tests' files share it).

    Module-scoped, as it was in the one video test file: quick to make, it is made again in each file that uses it.
    """
    return make_clip(samples, tmp_path_factory.mktemp("video") / "samples clip.mp4")


@pytest.fixture(scope="session")
def model_runs(samples, default_model, tmp_path_factory):
    """detect_mask_image.py with each broken or unsuitable model file (and one unwritable --output)."""
    import keras

    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(3)
    (folder / "random.h5").write_bytes(rng.bytes(20000))
    real = default_model.read_bytes()
    (folder / "truncated.h5").write_bytes(real[: len(real) // 2])
    with zipfile.ZipFile(folder / "junk.keras", "w") as archive:
        archive.writestr("config.json", rng.bytes(300))
        archive.writestr("model.weights.h5", rng.bytes(3000))

    def save(name, input_shape, classes, layer=None):
        inputs = keras.Input(input_shape)
        x = layer(inputs) if layer else inputs
        outputs = keras.layers.Dense(classes, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
        keras.Model(inputs, outputs).save(folder / name)

    save("grey_input.keras", (64, 64, 1), 2)
    save("four_classes.keras", (64, 64, 3), 4)
    # A Lambda layer is Python code inside the file; this one leaves a mark whenever it runs.
    marker = folder / "code ran"
    touch = eval(f"lambda t: t * float(__import__('pathlib').Path({str(marker)!r}).touch() is None)")
    save("lambda.keras", (64, 64, 3), 2, keras.layers.Lambda(touch))
    marker.unlink()
    keras.models.load_model(folder / "lambda.keras", safe_mode=False)  # without safe mode ...
    assert marker.exists()  # ... loading the file runs its code
    marker.unlink()
    (folder / "a file").write_text("")

    image = samples[0]
    runs = {
        name: ("detect_mask_image.py", "--image", image, "--no-display", "--json", "-", "--model", folder / name)
        for name in ("missing.h5", "random.h5", "truncated.h5", "junk.keras", "grey_input.keras",
                     "four_classes.keras", "lambda.keras")
    }
    runs["unwritable output"] = (
        "detect_mask_image.py", "--image", image, "--no-display", "--output", folder / "a file" / "out.jpg"
    )
    results = run_all(runs)
    results["marker"] = marker
    return results


@pytest.fixture(scope="session")
def display(tmp_path_factory):
    """A real X server (Xvfb) for the whole session, answering on a free display number, e.g. ':3'."""
    with virtual_display(tmp_path_factory.mktemp("xvfb") / "xvfb.log") as name:
        yield name
