"""Bad input never crashes the scripts, and nothing is lost (issue 5).

Every failure is one line starting with `error:` and a non-zero exit, never
a Python traceback. The scripts run for real on real files made here. Runs
that only fail are started two at a time, as each spends seconds importing
TensorFlow; each case still has its own test.
"""

import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from conftest import DATASET, ROOT, require, run_script, script_env
from mask_detector.errors import UserError
from test_video import SUMMARY, make_clip
from test_window import display  # noqa: F401 - the Xvfb fixture

IMAGE_KEYS = {"image", "width", "height", "faces"}
ERROR_KEYS = {"image", "error"}
ODD_FOLDER = "odd photos ü 写真"  # spaces and non-ASCII characters in every path of the folder run


def run_all(runs, parallel=2):
    """Run {name: (script, *args)} two at a time; return {name: CompletedProcess}."""
    with ThreadPoolExecutor(parallel) as pool:
        results = pool.map(lambda args: run_script(*args, timeout=300), runs.values())
        return dict(zip(runs, results))


def assert_one_line_error(result, *fragments, status=1):
    """Exit ``status``, no traceback, and exactly one `error:` line, the last one, holding ``fragments``."""
    stderr = result.stderr
    assert result.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == errors[0]
    for fragment in fragments:
        assert fragment in errors[0]
    return errors[0]


def read_records(path):
    return {Path(r["image"]).name: r for r in map(json.loads, Path(path).read_text(encoding="utf-8").splitlines())}


def mutate(data, rng):
    """Damage image bytes the way disks and networks do: bit flips, truncation, inserted or overwritten junk."""
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 20)):
            data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        del data[rng.integers(1, len(data)):]
    elif kind == 2:
        at = rng.integers(len(data))
        data[at:at] = rng.bytes(int(rng.integers(1, 500)))
    else:
        at = rng.integers(len(data))
        junk = rng.bytes(int(rng.integers(1, 200)))
        data[at:at + len(junk)] = junk
    return bytes(data)


@pytest.mark.parametrize("failure, expected", [
    (KeyError("no such thing"), "error: unexpected KeyError at test_bad_input.py:"),
    (MemoryError(), "error: out of memory"),
])
def test_an_unexpected_exception_is_one_line_too(capsys, failure, expected):
    """A bug is not bad input, but it still ends in one line (with where it happened), not a traceback."""
    from mask_detector.errors import run_cli

    def main(argv):
        raise failure

    with pytest.raises(SystemExit) as exit_status:
        run_cli(main)
    assert exit_status.value.code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(expected)
    assert line.endswith("; please report this") == isinstance(failure, KeyError)


# --- Image detection -------------------------------------------------------------------------------


def make_odd_images(folder, photo):
    """Write one file per awkward case into ``folder``; return {case: file name}."""
    from PIL import Image

    folder.mkdir(parents=True)
    image = cv2.imread(str(photo))
    height, width = image.shape[:2]
    files = {}

    def write(case, name, data):
        (folder / name).write_bytes(data)
        files[case] = name

    def encode(suffix, pixels):
        return cv2.imencode(suffix, pixels)[1].tobytes()

    photo_bytes = photo.read_bytes()
    write("plain", "plain copy é 写真.jpg", photo_bytes)
    write("empty", "empty.jpg", b"")
    write("text", "notes.jpg", b"not a picture, only text\n")
    write("truncated", "truncated.jpg", photo_bytes[: len(photo_bytes) // 2])
    write("one_pixel", "one pixel.png", encode(".png", image[:1, :1]))
    write("grey", "grey.png", encode(".png", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)))
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = np.linspace(0, 255, width, dtype=np.uint8)  # transparent on the left, opaque on the right
    write("rgba", "rgba.png", encode(".png", rgba))
    write("16-bit", "sixteen bit.png", encode(".png", image.astype(np.uint16) * 257))
    Image.open(photo).convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    files["cmyk"] = "cmyk.jpg"
    # EXIF orientation 6 says "turn 90 degrees clockwise to show", 8 "turn 90 degrees anticlockwise".
    for orientation, stored in ((6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.open(photo).transpose(stored).save(folder / f"exif {orientation}.jpg", "JPEG", exif=exif.tobytes())
        files[f"exif_{orientation}"] = f"exif {orientation}.jpg"
    # A face at the left and one at the right edge of the photo, both cut by the new borders.
    write("border", "cut at the border.jpg", encode(".jpg", image[height // 12:, width // 10: width - width // 10]))
    write("huge", "huge.jpg", encode(".jpg", cv2.resize(image, (10000, 8000), interpolation=cv2.INTER_LINEAR)))

    # The files really are what they claim to be.
    unchanged = {case: cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED) for case, name in files.items()
                 if case in ("grey", "rgba", "16-bit")}
    assert unchanged["grey"].ndim == 2 and unchanged["rgba"].shape[2] == 4 and unchanged["16-bit"].dtype == np.uint16
    assert Image.open(folder / "cmyk.jpg").mode == "CMYK"
    assert Image.open(folder / "exif 6.jpg").size == (height, width)
    return files


@pytest.fixture(scope="module")
def odd_run(samples, default_model, tmp_path_factory):
    """One run of detect_mask_image.py over a folder of awkward files, with --json and --output."""
    base = tmp_path_factory.mktemp("odd")
    folder = base / ODD_FOLDER
    files = make_odd_images(folder, samples[0])
    result = run_script(
        "detect_mask_image.py", "--image", folder, "--no-display",
        "--json", base / "results ü.jsonl", "--output", base / "annotated é",
    )
    records = read_records(base / "results ü.jsonl")
    return SimpleNamespace(
        result=result, records={case: records.get(name) for case, name in files.items()},
        annotated=base / "annotated é", files=files,
    )


def assert_photo_record(record, odd_run, size=None):
    """A successful line in the exact schema, with its annotated copy written at the same size."""
    from PIL import Image

    assert record is not None and set(record) == IMAGE_KEYS, record
    if size is not None:
        assert (record["width"], record["height"]) == size
    for face in record["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= record["width"] and 0 <= y1 < y2 <= record["height"], face
    with Image.open(odd_run.annotated / Path(record["image"]).name) as written:
        assert written.size == (record["width"], record["height"]) and written.mode == "RGB"
    return record


def assert_error_record(record, fragment):
    assert record is not None and set(record) == ERROR_KEYS, record
    assert fragment in record["error"]


def test_folder_run_reports_bad_files_in_their_line_and_goes_on(odd_run):
    result, records, files = odd_run.result, odd_run.records, odd_run.files
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert all(record is not None for record in records.values()), "every file gets its JSON line"
    failed = [case for case, record in records.items() if "error" in record]
    assert sorted(failed) == ["empty", "text", "truncated"]
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"3 of {len(files)} images failed"
    for case in failed:
        assert f"{records[case]['image']}: error: {records[case]['error']}" in result.stderr.splitlines()
    assert len(result.stdout.strip().splitlines()) == len(files) - 3  # one summary line per processed photo


def test_empty_file(odd_run):
    assert_error_record(odd_run.records["empty"], "is empty")


def test_text_file_named_jpg(odd_run):
    assert_error_record(odd_run.records["text"], "is not an image OpenCV can read")


def test_truncated_jpeg(odd_run):
    assert_error_record(odd_run.records["truncated"], "is not an image OpenCV can read")


def test_one_pixel_image(odd_run):
    assert assert_photo_record(odd_run.records["one_pixel"], odd_run, size=(1, 1))["faces"] == []


@pytest.mark.parametrize("case", ["grey", "rgba", "16-bit", "cmyk"])
def test_other_colour_formats_are_read_as_colour_photos(odd_run, case):
    records = odd_run.records
    plain = assert_photo_record(records["plain"], odd_run)
    record = assert_photo_record(records[case], odd_run, size=(plain["width"], plain["height"]))
    assert len(record["faces"]) >= len(plain["faces"]) - 2, (record, plain)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_is_applied(odd_run, samples, orientation):
    from mask_detector.pipeline import read_image

    records = odd_run.records
    plain = records["plain"]
    record = assert_photo_record(records[f"exif_{orientation}"], odd_run, size=(plain["width"], plain["height"]))
    assert len(record["faces"]) >= len(plain["faces"]) - 1
    # The pixels are upright, not only the reported size.
    upright = read_image(record["image"])
    original = cv2.imread(str(samples[0]))
    assert upright.shape == original.shape
    assert np.abs(upright.astype(int) - original.astype(int)).mean() < 8


def test_huge_image_completes_and_reports(odd_run):
    record = assert_photo_record(odd_run.records["huge"], odd_run, size=(10000, 8000))
    assert record["faces"], "the enlarged photo's faces are found"


def test_path_with_spaces_and_non_ascii(odd_run):
    result, records, files = odd_run.result, odd_run.records, odd_run.files
    record = assert_photo_record(records["plain"], odd_run)
    assert record["image"].endswith(f"{ODD_FOLDER}/{files['plain']}")
    assert record["faces"]
    assert f"{record['image']}: {len(record['faces'])} faces" in result.stdout


def test_faces_crossing_the_border(odd_run):
    record = assert_photo_record(odd_run.records["border"], odd_run)
    width, height = record["width"], record["height"]
    boxes = [face["box"] for face in record["faces"]]
    assert len(boxes) >= 3
    assert any(x1 == 0 or y1 == 0 or x2 == width or y2 == height for x1, y1, x2, y2 in boxes), boxes


def test_missing_path(tmp_path):
    result = run_script("detect_mask_image.py", "--image", tmp_path / "nowhere.jpg", "--no-display")
    assert_one_line_error(result, "nowhere.jpg does not exist")


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    (tmp_path / "sub folder.jpg").mkdir()  # a folder named like an image is not an image
    result = run_script("detect_mask_image.py", "--image", tmp_path, "--no-display")
    assert_one_line_error(result, f"folder {tmp_path} holds no images")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small valid classifier (32x32 RGB in, softmax over two classes out), quick to load."""
    import keras

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_box_with_nothing_inside_gives_no_crop():
    from mask_detector.classifier import crop_faces

    image = np.zeros((40, 60, 3), np.uint8)
    boxes = [(10, 10, 10, 30), (20, 5, 15, 30), (-30, -30, -1, -1), (70, 0, 90, 10), (0, 35, 60, 90), (59, 39, 60, 40)]
    crops = crop_faces(image, boxes, 16)
    assert crops[:4] == [None, None, None, None]
    assert crops[4].shape == crops[5].shape == (16, 16, 3)  # cut by the border, or a single pixel


def test_mask_detector_skips_faces_too_small_to_crop(tiny_model):
    from mask_detector.faces import Face
    from mask_detector.pipeline import MaskDetector

    class FixedFaces:
        def detect(self, image):
            return [Face((5, 5, 5, 9), 0.9), Face((0, 0, 30, 30), 0.8), Face((100, 100, 120, 130), 0.7)]

    detector = MaskDetector(tiny_model)
    detector.detector = FixedFaces()
    results = detector(np.full((50, 50, 3), 128, np.uint8))
    assert [result.box for result in results] == [(0, 0, 30, 30)]
    detector.detector.detect = lambda image: [Face((3, 3, 3, 3), 0.9)]
    assert detector(np.zeros((50, 50, 3), np.uint8)) == []


def test_fuzzed_images_in_one_folder_run(samples, default_model, tmp_path):
    rng = np.random.default_rng(5)
    jpeg = samples[0].read_bytes()
    png = cv2.imencode(".png", cv2.imread(str(samples[0])))[1].tobytes()
    folder = tmp_path / "fuzz"
    folder.mkdir()
    for index in range(150):
        if index < 10:
            data = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")[index % 2] + rng.bytes(int(rng.integers(0, 5000)))
        else:
            data = mutate(jpeg if index % 3 else png, rng)
        suffix = ".jpg" if data.startswith(b"\xff\xd8") else ".png"
        (folder / f"{index:03d}{suffix}").write_bytes(data)
    result = run_script(
        "detect_mask_image.py", "--image", folder, "--no-display", "--json", tmp_path / "fuzz.jsonl", timeout=240
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr[-3000:]
    records = read_records(tmp_path / "fuzz.jsonl")
    assert sorted(records) == sorted(p.name for p in folder.iterdir())
    for record in records.values():
        assert set(record) in (IMAGE_KEYS, ERROR_KEYS), record
    failed = sum("error" in record for record in records.values())
    assert 10 <= failed < 150
    assert result.stderr.strip().splitlines()[-1] == f"{failed} of 150 images failed"


def test_read_image_on_mutated_bytes_only_raises_user_error(samples, tmp_path):
    from mask_detector.pipeline import read_image

    rng = np.random.default_rng(11)
    sources = [samples[0].read_bytes(), cv2.imencode(".png", cv2.imread(str(samples[1])))[1].tobytes()]
    path = tmp_path / "mutated.img"
    outcomes = {"image": 0, "refused": 0}
    deadline = time.monotonic() + 10
    for attempt in range(3000):
        if time.monotonic() > deadline:
            break
        path.write_bytes(mutate(sources[attempt % 2], rng))
        try:
            image = read_image(path)
        except UserError:
            outcomes["refused"] += 1
            continue
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0
        outcomes["image"] += 1
    assert outcomes["image"] > 20 and outcomes["refused"] > 20, outcomes


# --- Models and assets -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
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
    save("three_classes.keras", (64, 64, 3), 3)
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
                     "three_classes.keras", "lambda.keras")
    }
    runs["unwritable output"] = (
        "detect_mask_image.py", "--image", image, "--no-display", "--output", folder / "a file" / "out.jpg"
    )
    results = run_all(runs)
    results["marker"] = marker
    return results


def test_missing_model_file_says_how_to_get_one(model_runs):
    line = assert_one_line_error(model_runs["missing.h5"], "missing.h5 not found")
    assert "python train_mask_detector.py --dataset dataset" in line and "--model PATH" in line


@pytest.mark.parametrize("name", ["random.h5", "truncated.h5", "junk.keras"])
def test_corrupt_model_file(model_runs, name):
    assert_one_line_error(model_runs[name], "cannot load model", f"{name} (damaged or not a Keras model)")
    assert model_runs[name].stdout == ""  # no image was processed with it


def test_model_with_unexpected_input_shape(model_runs):
    assert_one_line_error(model_runs["grey_input.keras"], "takes input of shape (None, 64, 64, 1)", "(batch, N, N, 3)")


def test_model_with_unexpected_output_shape(model_runs):
    assert_one_line_error(model_runs["three_classes.keras"], "gives output of shape (None, 3)", "expected (batch, 2)")


def test_model_with_python_code_is_refused_by_safe_mode(model_runs):
    assert_one_line_error(model_runs["lambda.keras"], "holds Python code (a Lambda layer) and is refused")
    assert not model_runs["marker"].exists(), "the model's code ran"


def test_unwritable_output_folder(model_runs):
    assert_one_line_error(model_runs["unwritable output"], "cannot write", "out.jpg")


# --- Training --------------------------------------------------------------------------------------


def copy_photos(source, destination, count):
    """Copy ``count`` photos with distinct contents (the seed's dataset holds duplicates)."""
    destination.mkdir(parents=True)
    seen = set()
    for path in sorted(source.iterdir()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen and path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            seen.add(digest)
            shutil.copyfile(path, destination / path.name)
        if len(seen) == count:
            return


def jpeg_only_opencv_reads(data, rng):
    """Damage a JPEG so that OpenCV still decodes it but TensorFlow, which training uses, does not."""
    import tensorflow as tf

    start = data.index(b"\xff\xda")  # damage the compressed picture, not the headers
    for _ in range(3000):
        damaged = bytearray(data)
        for _ in range(3):
            damaged[rng.integers(start + 20, len(data) - 2)] ^= 1 << int(rng.integers(8))
        if cv2.imdecode(np.frombuffer(damaged, np.uint8), cv2.IMREAD_REDUCED_COLOR_8) is None:
            continue
        try:
            tf.io.decode_image(bytes(damaged), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError:
            return bytes(damaged)
    pytest.fail("no damaged JPEG found that only OpenCV reads")


@pytest.fixture(scope="module")
def dataset_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("datasets")
    observations = require(DATASET / "observations")
    (folder / "empty").mkdir()
    copy_photos(observations / "with_mask", folder / "one class" / "with_mask", 3)
    copy_photos(observations / "with_mask", folder / "other names" / "mask", 3)
    copy_photos(observations / "without_mask", folder / "other names" / "no_mask", 3)
    (folder / "a file").write_text("")
    common = ("--logdir", folder / "logs", "--output", folder / "models" / "m.h5")
    runs = {
        name: ("train_mask_detector.py", "--dataset", folder / name, *common)
        for name in ("missing", "empty", "one class", "other names")
    }
    runs["unwritable output"] = (
        "train_mask_detector.py", "--dataset", observations, "--output", folder / "a file" / "m.h5",
        "--logdir", folder / "unwritable logs",
    )
    results = run_all(runs)
    results["folder"] = folder
    return results


def test_dataset_folder_that_does_not_exist(dataset_runs):
    missing = dataset_runs["folder"] / "missing"
    assert_one_line_error(dataset_runs["missing"], f"dataset folder {missing} does not exist")


def test_dataset_folder_that_is_empty(dataset_runs):
    assert_one_line_error(dataset_runs["empty"], "has no class folders: expected with_mask and without_mask")


def test_dataset_with_only_one_class(dataset_runs):
    assert_one_line_error(
        dataset_runs["one class"], "no usable images in without_mask", "needs both with_mask/ and without_mask/"
    )


def test_dataset_with_other_class_names_says_which_it_expects(dataset_runs):
    assert_one_line_error(
        dataset_runs["other names"], "expected with_mask and without_mask, found mask, no_mask"
    )


def test_unwritable_output_is_reported_before_training(dataset_runs):
    result = dataset_runs["unwritable output"]
    assert_one_line_error(result, f"cannot write to {dataset_runs['folder'] / 'a file'}")
    assert "images:" not in result.stdout  # it stopped before even listing the images
    assert not (dataset_runs["folder"] / "unwritable logs").exists()


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    observations = require(DATASET / "observations")
    dataset = tmp_path / "dataset"
    copy_photos(observations / "with_mask", dataset / "with_mask", 12)
    copy_photos(observations / "without_mask", dataset / "without_mask", 12)
    photo = next((dataset / "with_mask").glob("*.jpg")).read_bytes()
    bad = {
        "with_mask/empty.jpg": b"",
        "with_mask/notes.txt": b"a note left among the photos\n",
        "without_mask/truncated.jpg": photo[: len(photo) // 3],
        "without_mask/noise.png": b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(2000),
        "without_mask/damaged.jpg": jpeg_only_opencv_reads(photo, np.random.default_rng(2)),
    }
    for name, data in bad.items():
        (dataset / name).write_bytes(data)
    output = tmp_path / "models" / "small.h5"
    result = run_script(
        "train_mask_detector.py", "--dataset", dataset, "--epochs", 1, "--batch-size", 8,
        "--output", output, "--logdir", tmp_path / "logs",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == len(bad), result.stdout[-3000:]
    for name in bad:  # one line each
        assert sum(line.startswith(f"warning: skipping {dataset / name}: ") for line in warnings) == 1, name
    assert ", 5 skipped, " in next(line for line in result.stdout.splitlines() if line.startswith("images:"))
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["images"]["skipped_unreadable"] == 5
    assert card["images"]["usable"] == 24


def test_ctrl_c_keeps_the_best_checkpoint_and_no_half_written_model(tmp_path):
    import keras

    output = tmp_path / "models" / "interrupted.h5"
    checkpoint = output.with_name("interrupted.checkpoint.keras")
    command = [
        sys.executable, str(ROOT / "train_mask_detector.py"), "--dataset", str(require(DATASET / "observations")),
        "--max-per-class", "40", "--batch-size", "8", "--epochs", "50", "--patience", "50",
        "--output", str(output), "--logdir", str(tmp_path / "logs"),
    ]
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=script_env(), stdout=stdout, stderr=stderr)
        try:
            deadline = time.monotonic() + 300
            while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert checkpoint.exists(), (tmp_path / "stderr").read_text()[-3000:]
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=120)
        finally:
            process.kill()
    errors = (tmp_path / "stderr").read_text()
    assert status == 130, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
    assert errors.strip().splitlines()[-1] == (
        f"interrupted: no final model written; best checkpoint so far kept at {checkpoint}"
    )
    assert [p.name for p in output.parent.iterdir()] == [checkpoint.name]  # no .h5, .keras, card or partial file
    model = keras.models.load_model(checkpoint)
    assert tuple(model.input_shape) == (None, 128, 128, 3) and tuple(model.output_shape) == (None, 2)


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_save_atomically_keeps_the_old_file_when_saving_fails(tmp_path, monkeypatch, failure):
    import keras

    from mask_detector.training import save_atomically

    def save_half_then_fail(model, path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise failure

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    monkeypatch.setattr(keras.Model, "save", save_half_then_fail)
    path = tmp_path / "model.keras"
    path.write_bytes(b"the previous model")
    with pytest.raises(type(failure)):
        save_atomically(model, path)
    assert path.read_bytes() == b"the previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


# --- Live detection --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_runs(samples, default_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    (folder / "garbage.mp4").write_bytes(np.random.default_rng(4).bytes(50000))
    clip = make_clip(samples[:3], folder / "short clip.mp4", size=(320, 240))
    runs = {
        "camera 9": ("--source", 9),
        "garbage file": ("--source", folder / "garbage.mp4"),
        "closed stream": ("--source", "rtsp://127.0.0.1:9/live"),
        "file that ends": ("--source", clip),
    }
    return run_all({name: ("detect_mask_video.py", *args, "--no-display") for name, args in runs.items()})


def test_camera_that_does_not_exist(video_runs):
    assert_one_line_error(video_runs["camera 9"], "cannot open camera 9")


def test_garbage_video_file(video_runs):
    assert_one_line_error(video_runs["garbage file"], "cannot open video file", "garbage.mp4")


def test_stream_that_cannot_be_opened(video_runs):
    assert_one_line_error(video_runs["closed stream"], "cannot open stream rtsp://127.0.0.1:9/live")


def test_video_file_that_ends(video_runs):
    result = video_runs["file that ends"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    summary = SUMMARY.match(result.stdout.strip().splitlines()[-1])
    assert summary and summary.group(1) == "12" and summary.group(7) is None, result.stdout


class ScriptedCapture:
    """Stands in for cv2.VideoCapture. Steps: an int is a frame of that value, a float that
    many seconds of failed reads, an exception is raised; after the last step reads fail."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.failing_until = None

    def __call__(self, target):  # used as the class: FrameSource calls cv2.VideoCapture(target)
        return self

    def isOpened(self):
        return True

    def get(self, prop):
        return 25.0

    def read(self):
        time.sleep(0.005)
        while self.steps:
            step = self.steps[0]
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, float):
                self.failing_until = self.failing_until or time.monotonic() + step
                if time.monotonic() < self.failing_until:
                    return False, None
                self.failing_until = None
                self.steps.pop(0)
                continue
            self.steps.pop(0)
            return True, np.full((2, 2, 3), step, np.uint8)
        return False, None

    def release(self):
        pass


def frames_of(source, timeout=20):
    """Every frame value the source gives; fails if it never ends."""
    values = []

    def collect():
        values.extend(int(frame[0, 0, 0]) for frame in source)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "the frame source never ended"
    return values


def test_stream_that_drops_frames_waits_then_reports(monkeypatch):
    from mask_detector import video

    monkeypatch.setattr(video.cv2, "VideoCapture", ScriptedCapture([1, 2, 3, 0.6, 4, 5]))
    start = time.monotonic()
    with video.FrameSource("rtsp://camera.example/live", stream_timeout=1.5) as source:
        values = frames_of(source)
        assert values[-1] == 5  # frames after a short gap still come through
        assert time.monotonic() - start >= 0.6 + 1.5  # it waited the whole timeout before giving up
        assert source.error == "rtsp://camera.example/live sent no frame for 1.5 s"


def test_source_whose_read_raises_ends_with_an_error(monkeypatch):
    from mask_detector import video

    monkeypatch.setattr(video.cv2, "VideoCapture", ScriptedCapture([1, 2, RuntimeError("device unplugged")]))
    with video.FrameSource("rtsp://camera.example/live") as source:
        assert frames_of(source)[-1] == 2
        assert source.error == "cannot read from rtsp://camera.example/live: device unplugged"


def close_like_a_window_manager(display_name, window):
    """Send WM_DELETE_WINDOW, what a window manager sends when the user clicks the close button.

    (xdotool windowclose destroys the X window behind Qt's back: Qt never notices
    and keeps drawing, so it does not stand for a user closing the window.)
    """

    class ClientMessage(ctypes.Structure):
        _fields_ = [
            ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
            ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
            ("format", ctypes.c_int), ("data", ctypes.c_long * 5),
        ]

    class Event(ctypes.Union):
        _fields_ = [("client", ClientMessage), ("padding", ctypes.c_long * 24)]

    library = ctypes.util.find_library("X11")
    assert library, "libX11 is needed to close a window"
    x11 = ctypes.CDLL(library)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(Event)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = x11.XOpenDisplay(display_name.encode())
    assert connection, f"cannot open display {display_name}"
    event = Event()
    event.client.type = 33  # ClientMessage
    event.client.window = window
    event.client.message_type = x11.XInternAtom(connection, b"WM_PROTOCOLS", 0)
    event.client.format = 32
    event.client.data[0] = x11.XInternAtom(connection, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(connection, window, 0, 0, ctypes.byref(event))
    x11.XFlush(connection)
    x11.XCloseDisplay(connection)


def close_window_when_shown(process, display_name, timeout=120):
    """Wait for the script's window, then close it as a user would until the script ends."""
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is needed for the window tests (apt-get install xdotool)")
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--name", "Face mask detector"],
            env={**os.environ, "DISPLAY": display_name}, capture_output=True, text=True,
        ).stdout.split()
        if found:
            time.sleep(1)  # let it show a few frames
            for _ in range(10):
                close_like_a_window_manager(display_name, int(found[0]))
                try:
                    return process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
            break
        time.sleep(0.2)
    process.kill()
    pytest.fail("the window never appeared or did not close")


def test_video_window_closed_by_the_user(display, samples, default_model, tmp_path):  # noqa: F811
    clip = make_clip(samples * 15, tmp_path / "long clip.mp4", size=(320, 240))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip)],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    status = close_window_when_shown(process, display)
    stdout, stderr = process.communicate(timeout=30)
    assert status == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    summary = SUMMARY.match(stdout.strip().splitlines()[-1])
    assert summary and summary.group(7) == " (window closed)", stdout
    assert 0 < int(summary.group(1)) < len(samples) * 15 * 4


def test_image_window_closed_by_the_user_keeps_the_result(display, samples, default_model, tmp_path):  # noqa: F811
    results = tmp_path / "results.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(samples[0]), str(samples[1]),
         "--json", str(results)],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    status = close_window_when_shown(process, display)
    stdout, stderr = process.communicate(timeout=30)
    assert status == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "stopped after 1 of 2 images"
    (record,) = read_records(results).values()  # the photo on screen when the window closed
    assert record["image"] == str(samples[0]) and set(record) == IMAGE_KEYS
