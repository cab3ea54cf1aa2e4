"""train_mask_detector.py end to end on a small real subset, on bad datasets, and when interrupted."""

import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from support.scripts import (
    DATASET, ROOT, assert_one_line_error, ctrl_c_at_default, require, run_all, run_script, script_env, small_disk,
    user_env,
)
from mask_detector.labels import CLASS_NAMES


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    output = folder / "models" / "small.h5"
    result = run_script(
        "train_mask_detector.py", "--dataset", require(DATASET / "observations"),
        "--max-per-class", 24, "--epochs", 1, "--fine-tune-epochs", 1, "--batch-size", 8,
        "--output", output, "--logdir", folder / "logs", "--seed", 7,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, output, folder


def test_writes_model_card_plot_and_keras_copy(trained):
    result, output, _ = trained
    assert {p.name for p in output.parent.iterdir()} == {
        "small.h5", "small.keras", "small.json", "small_training.png", "small_reliability.png"
    }  # and no checkpoint or partial file left behind
    plot = cv2.imread(str(output.with_name("small_training.png")))
    assert plot is not None and plot.std() > 0
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["class_names"] == list(CLASS_NAMES)
    assert card["seed"] == 7 and card["input"]["size"] == [128, 128, 3]
    assert card["images"]["usable"] == 48
    assert card["images"]["train"] + card["images"]["validation"] + card["images"]["test"] <= 48
    assert "--max-per-class 24" in card["command"]
    assert 0.0 <= card["test_split"]["accuracy"] <= 1.0
    # Where the time went, in the card and on the last line; the faces located are kept in the user's cache.
    steps = card["seconds_by_step"]
    assert list(steps) == ["imports", "find images", "locate faces", "cut faces", "build", "train frozen",
                           "fine-tune", "calibrate", "test"]
    assert all(seconds >= 0 for seconds in steps.values()) and steps["train frozen"] > 0
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"seconds by step: imports [\d.]+, find images [\d.]+, locate faces [\d.]+, "
                        r"cut faces [\d.]+, build [\d.]+, train frozen [\d.]+, fine-tune [\d.]+, calibrate [\d.]+, "
                        r"test [\d.]+, write [\d.]+; "
                        r"other [\d.]+; all [\d.]+", last), last
    assert re.search(r"faces located .* of them from the cache .*/mask-detector/faces/faces-\w+\.jsonl",
                     result.stdout)
    assert set(card["test_split"]) >= {"accuracy", "balanced_accuracy", "mask", "no_mask"}
    # The classification report and the per-epoch progress are printed.
    assert "precision" in result.stdout and "no_mask" in result.stdout
    assert re.search(r"^\d+/\d+ - \d+m?s - .*loss: [\d.]+ - val_accuracy", result.stdout, re.M), result.stdout


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_saved_model_is_self_contained(trained, suffix):
    import keras

    _, output, _ = trained
    model = keras.models.load_model(output.with_suffix(suffix))  # no custom objects needed
    assert tuple(model.input_shape) == (None, 128, 128, 3)
    assert tuple(model.output_shape) == (None, 2)
    faces = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3)).astype("float32")
    probabilities = np.asarray(model(faces))
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_tensorboard_logs_for_train_and_validation(trained):
    _, _, folder = trained
    (run,) = (folder / "logs").iterdir()
    for part in ("train", "validation"):
        events = list((run / part).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0, f"no {part} events in {run}"


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
    copy_photos(observations / "with_mask", folder / "one image" / "with_mask", 1)
    copy_photos(observations / "without_mask", folder / "one image" / "without_mask", 3)
    # Three classes of three distinct photos each (the third from other masked photos), and a folder that is no class.
    sources = {"with_mask": observations / "with_mask", "without_mask": observations / "without_mask",
               "mask_weared_incorrect": require(DATASET / "chandrikadeb7" / "with_mask"),
               "notes": observations / "with_mask"}
    for name, source in sources.items():
        copy_photos(source, folder / "three each" / name, 3)
    common = ("--logdir", folder / "logs", "--output", folder / "models" / "m.h5")
    runs = {
        name: ("train_mask_detector.py", "--dataset", folder / name, *common)
        for name in ("missing", "empty", "one class", "other names", "one image", "three each")
    }
    runs["unwritable output"] = (
        "train_mask_detector.py", "--dataset", observations, "--output", folder / "a file" / "m.h5",
        "--logdir", folder / "unwritable logs",
    )
    runs["read-only logdir"] = (
        "train_mask_detector.py", "--dataset", observations, "--output", folder / "models" / "m.h5",
        "--logdir", folder / "read-only" / "logs",
    )
    with small_disk(folder / "read-only", read_only=True):
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
        dataset_runs["other names"], "expected with_mask and without_mask (and incorrect_mask for three classes), found mask, no_mask"
    )


def test_unwritable_output_is_reported_before_training(dataset_runs):
    result = dataset_runs["unwritable output"]
    assert_one_line_error(result, f"cannot write to {dataset_runs['folder'] / 'a file'}")
    assert "images:" not in result.stdout  # it stopped before even listing the images
    assert not (dataset_runs["folder"] / "unwritable logs").exists()


def test_too_few_images_in_a_class_says_how_many_are_needed(dataset_runs):
    """Once: one image, or three per class, ended in `unexpected ValueError ... test_size`."""
    assert_one_line_error(
        dataset_runs["one image"], "too few images to train: with_mask/ has 1 and without_mask/ has 3; "
        "training needs at least 10 distinct images per class, so that the test split (20%) and the validation "
        "split (10%) each hold one"
    )
    assert_one_line_error(
        dataset_runs["three each"], "with_mask/ has 3 and without_mask/ has 3 and incorrect_mask/ has 3", "at least 10")


def test_class_folders_used_and_ignored_are_said(dataset_runs):
    """A folder that is no class was once skipped without a word; the third class is used."""
    dataset = dataset_runs["folder"] / "three each"
    assert (
        f"{dataset}: using with_mask/, without_mask/, mask_weared_incorrect/; ignoring notes/ "
        "(not a class: expected with_mask and without_mask (and incorrect_mask for three classes))"
    ) in dataset_runs["three each"].stdout.splitlines()


def test_read_only_logdir_is_reported_before_training(dataset_runs):
    """Once: a read-only --logdir failed only after training."""
    result = dataset_runs["read-only logdir"]
    assert_one_line_error(result, f"cannot write to {dataset_runs['folder'] / 'read-only' / 'logs'}: Read-only file system")
    assert "images:" not in result.stdout  # it stopped before even listing the images


def test_classic_flags_linked_folders_and_a_quiet_console(tmp_path):
    """-d, -m and -p as in the classic recipe; a class folder's linked sub-folder is read, a broken link said."""
    observations = require(DATASET / "observations")
    dataset = tmp_path / "dataset"
    copy_photos(observations / "with_mask", tmp_path / "more masks", 12)
    (dataset / "with_mask").mkdir(parents=True)
    for photo in sorted((tmp_path / "more masks").iterdir())[:6]:
        photo.rename(dataset / "with_mask" / photo.name)  # six in the class folder, six in a folder linked from it
    (dataset / "with_mask" / "linked").symlink_to(tmp_path / "more masks")
    (dataset / "with_mask" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    copy_photos(observations / "without_mask", dataset / "without_mask", 12)
    result = run_script(
        "train_mask_detector.py", "-d", dataset, "-m", tmp_path / "out" / "m.h5", "-p", tmp_path / "curves.png",
        "--logdir", tmp_path / "logs", "--epochs", 1, "--fine-tune-epochs", 0, "--batch-size", 8, env=user_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    broken = f"{dataset / 'with_mask' / 'gone.jpg'}: it is a broken symbolic link (to {tmp_path / 'deleted.jpg'})"
    assert f"warning: skipping {broken}" in lines
    assert any(line.startswith("images: 24 usable ({'mask': 12, 'no_mask': 12}), 1 skipped,") for line in lines), lines
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.h5", "m.json", "m.keras", "m_reliability.png"]
    assert cv2.imread(str(tmp_path / "curves.png")) is not None
    assert re.search(r"^test accuracy [\d.]+; 1 epoch in \d+ s$", result.stdout, re.M), result.stdout
    assert result.stderr == ""  # no TensorFlow or absl lines


def test_defaults_are_in_the_project_wherever_it_runs_from(tmp_path):
    """Once: run from another folder, training looked for ./dataset and wrote ./logs."""
    logs_existed = (ROOT / "logs").exists()
    help_text = run_script("train_mask_detector.py", "--help", cwd=tmp_path).stdout
    for default in (DATASET, ROOT / "logs", ROOT / "models" / "mask_detector.h5"):
        assert f"(default: {default})" in re.sub(r"\s+", " ", help_text)
    result = run_script(
        "train_mask_detector.py", "--max-per-class", 12, "--epochs", 1, "--fine-tune-epochs", 0, "--batch-size", 8,
        "-m", "m.h5", cwd=tmp_path,
    )
    logs = re.search(r"TensorBoard logs in (.+)$", result.stdout, re.M)
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"{DATASET / 'observations'}: using with_mask/, without_mask/" in result.stdout.splitlines()
        written = (f"wrote {tmp_path / 'm.h5'}, {tmp_path / 'm.keras'}, {tmp_path / 'm.json'}, "
                   f"{tmp_path / 'm_training.png'}, {tmp_path / 'm_reliability.png'}")
        assert result.stdout.splitlines()[-2].startswith(written + "; TensorBoard logs in ")
        assert result.stdout.splitlines()[-1].startswith("seconds by step: imports ")
        assert Path(logs.group(1)).parent == ROOT / "logs" and any(Path(logs.group(1)).rglob("events.out.*"))
        assert not (tmp_path / "logs").exists() and not (tmp_path / "dataset").exists()
    finally:
        if logs:
            shutil.rmtree(logs.group(1), ignore_errors=True)
        if not logs_existed and (ROOT / "logs").exists() and not any((ROOT / "logs").iterdir()):
            (ROOT / "logs").rmdir()


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
    }
    for name, data in bad.items():
        (dataset / name).write_bytes(data)
    # Damaged so that TensorFlow's decoder refuses it but OpenCV reads it, as the photo script does:
    # training reads images as the scripts do, so it is used, not skipped.
    (dataset / "without_mask" / "damaged.jpg").write_bytes(jpeg_only_opencv_reads(photo, np.random.default_rng(2)))
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
    assert ", 4 skipped, " in next(line for line in result.stdout.splitlines() if line.startswith("images:"))
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["images"]["skipped_unreadable"] == 4
    assert card["images"]["usable"] == 25


def test_training_reads_images_as_the_scripts_do(tmp_path):
    """Issue 20, case 8: WebP and TIFF (which the photo script reads) were refused; an EXIF-rotated photo was
    trained sideways; --max-per-class 10 with a dataset given twice found "too few images" (copies counted)."""
    from mask_detector.data import find_images, limit_per_class, make_dataset, split_without_leaks
    from mask_detector.files import read_image

    observations = require(DATASET / "observations")
    dataset = tmp_path / "dataset"
    copy_photos(observations / "with_mask", dataset / "with_mask", 12)
    copy_photos(observations / "without_mask", dataset / "without_mask", 12)
    photo = sorted((dataset / "with_mask").glob("*.jpg"))[0]
    image = cv2.imread(str(photo))
    cv2.imwrite(str(dataset / "with_mask" / "as.webp"), cv2.flip(image, 1))
    cv2.imwrite(str(dataset / "with_mask" / "as.tiff"), cv2.flip(image, 0))
    rotated = dataset / "without_mask" / "rotated.jpg"
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 8  # "turn 90 degrees anticlockwise to show": stored turned the other way
    Image.open(photo).transpose(Image.Transpose.ROTATE_270).save(rotated, "JPEG", exif=exif.tobytes())

    images = find_images([dataset], report=lambda message: None)
    assert not images.skipped and {Path(p).name for p in images.paths} >= {"as.webp", "as.tiff", "rotated.jpg"}
    upright = read_image(rotated)
    assert upright.shape[:2] == image.shape[:2]  # EXIF orientation 8 undone
    rotated_only = images.subset([images.paths.index(str(rotated))])
    rotated_only.face_boxes = [None]  # read whole
    batch = next(iter(make_dataset(rotated_only, 64, batch_size=1)))[0].numpy()[0]
    expected = cv2.resize(upright, (64, 64), interpolation=cv2.INTER_AREA)[..., ::-1].astype(np.float32)
    assert np.abs(batch - expected).mean() < 6  # upright in training too, as at run time

    # Given twice, every file has a copy; ten distinct images a class are still ten.
    twice = find_images([dataset, dataset], report=lambda message: None)
    limited = limit_per_class(twice, 10, seed=0)
    assert sorted(limited.counts().values()) == [10, 10] and len(set(limited.hashes)) == 20
    result = run_script("train_mask_detector.py", "--dataset", dataset, "--dataset", dataset, "--max-per-class", 10,
                        "--epochs", 1, "--fine-tune-epochs", 0, "--batch-size", 8,
                        "--output", tmp_path / "models" / "m.h5", "--logdir", tmp_path / "logs")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "too few images" not in result.stdout + result.stderr
    train, validation, test, _ = split_without_leaks(limited, seed=42)
    assert len(train.paths) + len(validation.paths) + len(test.paths) == 20


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
        process = subprocess.Popen(command, cwd=ROOT, env=script_env(), stdout=stdout, stderr=stderr,
                                   preexec_fn=ctrl_c_at_default)
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
