"""detect_mask_image.py on the real sample photos, on awkward and damaged files, and in a window."""

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from support.media import match_to_truth, mutate
from support.scripts import (
    DATASET, ROOT, VOC_DEV, assert_one_line_error, ctrl_c_at_default, read_records, require, run_all, run_script,
    script_env, small_disk, user_env,
)
from support.xserver import PATIENCE, close_window_when_shown, find_window, press_key, watch
from mask_detector.evaluation import load_voc

FACE_KEYS = {"box", "detection_score", "label", "mask_probability", "judged", "pose", "probabilities"}
IMAGE_KEYS = {"image", "size", "mtime", "width", "height", "faces", "settings"}
ERROR_KEYS = {"image", "size", "mtime", "error", "settings"}
ODD_FOLDER = "odd photos ü 写真"  # spaces and non-ASCII characters in every path of the folder run


@pytest.fixture(scope="module")
def sample_run(samples, default_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect")
    result = run_script(
        "detect_mask_image.py", "--image", samples[0].parent, "--no-display",
        "--output", folder / "annotated", "--json", folder / "results.jsonl",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    return result, records, folder


def test_json_lines_follow_the_schema_exactly(sample_run, samples):
    _, records, _ = sample_run
    assert [r["image"] for r in records] == [str(p) for p in samples]
    for record, path in zip(records, samples):
        assert set(record) == IMAGE_KEYS
        assert (record["size"], record["mtime"]) == (path.stat().st_size, path.stat().st_mtime)
        height, width = cv2.imread(str(path)).shape[:2]
        assert (record["width"], record["height"]) == (width, height)
        for face in record["faces"]:
            # YuNet gives landmarks, so every face has a pose; only a face not judged says why.
            assert set(face) == FACE_KEYS | ({"not_judged_because"} if not face["judged"] else set())
            assert face.get("not_judged_because") in (None, "small", "turned", "tilted", "unsure")
            assert set(face["pose"]) == {"yaw", "pitch", "roll"} and all(abs(v) <= 180 for v in face["pose"].values())
            x1, y1, x2, y2 = face["box"]
            assert all(type(v) is int for v in face["box"])
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            assert 0.0 <= face["detection_score"] <= 1.0
            assert 0.0 <= face["mask_probability"] <= 1.0
            probabilities = face["probabilities"]
            assert probabilities["mask"] == face["mask_probability"]
            assert set(probabilities) in ({"mask", "no_mask"}, {"mask", "no_mask", "incorrect"})
            assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
            assert face["label"] == max(probabilities, key=probabilities.get)


def test_faces_found_and_labelled_like_the_annotations(sample_run):
    """The samples' clearly visible faces (>= 32 px) are found, and labelled as annotated."""
    _, records, _ = sample_run
    truth = {a.image.name: a for a in load_voc(require(VOC_DEV))}
    large = found = agreed = 0
    for record in records:
        annotation = truth[record["image"].replace("\\", "/").rsplit("/", 1)[-1]]
        boxes = np.array([f["box"] for f in record["faces"]], dtype=np.float32).reshape(-1, 4)
        matched = match_to_truth(boxes, annotation.boxes)
        for truth_index in np.flatnonzero(annotation.sizes >= 32):
            if annotation.labels[truth_index] is None:
                continue  # mask worn incorrectly: neither label is wrong
            large += 1
            if matched[truth_index] >= 0:
                found += 1
                agreed += record["faces"][matched[truth_index]]["label"] == annotation.labels[truth_index]
    assert large >= 10
    assert found / large >= 0.75, f"found {found} of {large} faces of 32 px or more"
    assert agreed / found >= 0.85, f"{agreed} of {found} labels agree with the annotations"


def test_one_face_gets_one_box(sample_run):
    """A masked face close to the camera, cut by the frame (sample 148, top left), gets one box.

    The enlarged detection pass also finds its eyes and the top of its mask as
    a face inside it, which was labelled "Mask below nose"; while the face of
    a man half behind another (a box partly inside his) is kept.
    """
    from mask_detector.boxes import as_boxes, share_inside

    _, records, _ = sample_run
    for record in records:
        boxes = as_boxes([face["box"] for face in record["faces"]])
        inside = share_inside(boxes, boxes)
        np.fill_diagonal(inside, 0)
        assert inside.max(initial=0) <= 0.6, f"{record['image']}: a box lies inside another"
    close_up = next(r for r in records if r["image"].endswith("maksssksksss148.jpg"))
    # The masked face at the top left, (0, 4, 71, 103); the nested box was (40, 32, 78, 85).
    top_left = [face for face in close_up["faces"] if face["box"][2] <= 80 and face["box"][3] <= 110]
    assert len(top_left) == 1 and top_left[0]["label"] == "mask"
    assert len(close_up["faces"]) == 5


@pytest.fixture(scope="module")
def hard_photos_run(default_model, tmp_path_factory):
    """Dev photos where faces are turned to the side (720, 780) or far away (428), as the photo script sees them."""
    folder = tmp_path_factory.mktemp("hard")
    names = ("maksssksksss720.jpg", "maksssksksss780.jpg", "maksssksksss428.jpg")
    result = run_script("detect_mask_image.py", "--image", *(require(VOC_DEV) / "images" / n for n in names),
                        "--no-display", "--json", folder / "results.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    records = {Path(r["image"]).name: r for r in read_records(folder / "results.jsonl").values()}
    return result, records


def flagged(face):
    return face["judged"] and face["label"] != "mask"


def test_masks_worn_right_on_faces_turned_to_the_side_are_not_flagged(hard_photos_run):
    """A man in profile (720) and a woman turned away (780), both wearing a surgical mask over the nose,
    were drawn as "Mask below nose" at 0.88 and 0.92 with box crops."""
    _, records = hard_photos_run
    truth = {a.image.name: a for a in load_voc(require(VOC_DEV))}
    # The annotated boxes of the two faces, each annotated with_mask.
    for name, annotated in (("maksssksksss720.jpg", [39, 73, 71, 141]), ("maksssksksss780.jpg", [95, 60, 151, 130])):
        index = truth[name].boxes.astype(int).tolist().index(annotated)
        assert truth[name].labels[index] == "mask"
        faces = records[name]["faces"]
        boxes = np.array([face["box"] for face in faces], dtype=np.float32).reshape(-1, 4)
        matched = match_to_truth(boxes, np.array([annotated], dtype=np.float32))[0]
        assert matched >= 0, (name, boxes)
        assert not flagged(faces[matched]), (name, faces[matched])


def test_a_face_in_profile_is_not_judged_and_says_it_is_turned(hard_photos_run):
    """The man in profile in 720 (his landmarks land on his ear): his pose is written, far from frontal, and
    he is not judged, because he is turned."""
    _, records = hard_photos_run
    faces = records["maksssksksss720.jpg"]["faces"]
    boxes = np.array([face["box"] for face in faces], dtype=np.float32).reshape(-1, 4)
    matched = match_to_truth(boxes, np.array([[28, 64, 67, 133]], dtype=np.float32))[0]
    assert matched >= 0, boxes
    profile = faces[matched]
    assert set(profile["pose"]) == {"yaw", "pitch", "roll"}
    assert max(abs(profile["pose"]["yaw"]), abs(profile["pose"]["pitch"])) > 45
    assert profile["judged"] is False and profile["not_judged_because"] == "turned"
    for face in faces:  # every face says why when it is not judged, and only then
        assert ("not_judged_because" in face) == (not face["judged"])


def test_a_head_on_one_side_is_judged_or_says_why_not(samples, default_model, tmp_path):
    """A sample photo turned 35 degrees, as a head leaning on one side: the faces are still found, their roll
    is read, and each is judged or says why it is not."""
    photo = next(path for path in samples if path.name == "maksssksksss244.jpg")
    image = cv2.imread(str(photo))
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -35, 1.0)
    cv2.imwrite(str(tmp_path / "leaning.jpg"), cv2.warpAffine(image, matrix, (width, height),
                                                              borderValue=(127, 127, 127)))
    result = run_script("detect_mask_image.py", "--image", tmp_path / "leaning.jpg", "--no-display",
                        "--json", tmp_path / "leaning.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    faces = next(iter(read_records(tmp_path / "leaning.jsonl").values()))["faces"]
    assert faces
    large = [face for face in faces if face["box"][2] - face["box"][0] >= 40]
    # YuNet places the eyes of most leaning faces well (one of them here it reads upright).
    assert sum(face["pose"]["roll"] == pytest.approx(35, abs=12) for face in large) >= 2
    for face in faces:
        assert face["judged"] or face["not_judged_because"] in ("small", "turned", "tilted", "unsure")


def test_faces_too_small_to_judge_say_so_and_are_counted_apart(hard_photos_run, default_model):
    """Far-away faces keep their label and probabilities, with "judged": false, and are never counted as a
    violation."""
    from mask_detector.classifier import read_card
    from mask_detector.judging import judging_of

    result, records = hard_photos_run
    smallest = judging_of(read_card(default_model)).min_face_size
    far = records["maksssksksss428.jpg"]
    small = [face for face in far["faces"] if max(face["box"][2] - face["box"][0], face["box"][3] - face["box"][1]) < smallest]
    assert small, f"no face under {smallest} px found in {far['image']}"
    for face in small:
        assert face["judged"] is False and face["label"] in face["probabilities"]
    unjudged = sum(not face["judged"] for face in far["faces"])
    line = next(line for line in result.stdout.splitlines() if line.startswith(far["image"]))
    assert line.endswith(f", {unjudged} not judged"), line
    judged_labels = [face["label"] for face in far["faces"] if face["judged"]]
    assert f", {judged_labels.count('no_mask')} no mask" in line


def test_annotated_images_are_written(sample_run, samples):
    _, records, folder = sample_run
    for record, path in zip(records, samples):
        written = cv2.imread(str(folder / "annotated" / path.name))
        assert written is not None and written.shape[:2] == (record["height"], record["width"])
        if record["faces"]:
            # Boxes are drawn in green or red, so the annotated image differs from the photo.
            assert np.abs(written.astype(int) - cv2.imread(str(path)).astype(int)).max() > 100


def test_one_summary_line_per_photo(sample_run, samples):
    result, records, _ = sample_run
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(samples)
    for line, record in zip(lines, records):
        faces = record["faces"]
        labels = [f["label"] for f in faces if f["judged"]]
        counted = f"{len(faces)} face" + ("" if len(faces) == 1 else "s")
        unjudged = f", {len(faces) - len(labels)} not judged" if len(labels) < len(faces) else ""
        assert line == (f"{record['image']}: {counted}, {labels.count('mask')} mask, {labels.count('no_mask')} no mask, "
                        f"{labels.count('incorrect')} mask worn wrongly{unjudged}")


def test_json_to_stdout_single_file_and_ssd(samples, default_model, tmp_path):
    output = tmp_path / "annotated.png"
    result = run_script(
        "detect_mask_image.py", "--image", samples[0], "--detector", "ssd", "--confidence", "0.5",
        "--model", default_model, "--no-display", "--json", "-", "--output", output,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()  # stdout holds only the JSON
    record = json.loads(line)
    assert record["faces"] and all(f["detection_score"] >= 0.5 for f in record["faces"])
    assert cv2.imread(str(output)).shape[:2] == (record["height"], record["width"])


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
    assert_error_record(odd_run.records["text"], "is not an image file")


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
    from mask_detector.files import read_image

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
    faces = len(record["faces"])
    assert f"{record['image']}: {faces} face{'' if faces == 1 else 's'}," in result.stdout


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


def test_unwritable_output_folder(model_runs):
    assert_one_line_error(model_runs["unwritable output"], "cannot write to", "a file: it is a file")


def test_image_window_shows_the_annotated_photo_until_a_key_is_pressed(display, samples, default_model, tmp_path):
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(samples[0])],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shot = watch(process, display)
    if shot is None:
        process.kill()
        pytest.fail(f"no annotated window seen; stderr: {process.communicate()[1][-2000:]}")
    press_key(display, find_window(process, display), "space")
    stdout, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, stderr
    assert "faces" in stdout
    from PIL import Image

    Image.fromarray(shot).save(tmp_path / "image_window.png")


def test_image_window_with_wait_goes_on_by_itself(display, samples, default_model):
    """--wait: each photo is shown for that long, then the next; the last closes the window, no key needed."""
    result = run_script("detect_mask_image.py", "--image", *samples[:2], "--wait", 500,
                        env=script_env(DISPLAY=display), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [str(p) for p in samples[:2]]


def test_image_window_closed_by_the_user_keeps_the_result(display, samples, default_model, tmp_path):
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


# A user's files are never damaged; failures are fast and say why.

def photo_folder(folder, photos, names=None):
    """Copy ``photos`` into ``folder`` (under ``names`` if given); return {name: original bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = {}
    for photo, name in zip(photos, names or [p.name for p in photos]):
        (folder / name).write_bytes(photo.read_bytes())
        kept[name] = photo.read_bytes()
    return kept


def assert_unchanged(folder, kept):
    assert sorted(p.name for p in folder.iterdir()) == sorted(kept)
    for name, data in kept.items():
        assert (folder / name).read_bytes() == data, f"{name} was changed"


@pytest.fixture(scope="module")
def refused_runs(samples, tmp_path_factory):
    """Runs that must be refused before any work, each with the folder it must leave as it was."""
    base = tmp_path_factory.mktemp("refused")
    folders = {name: base / name for name in ("into itself", "json on a photo", "one photo onto itself", "many")}
    kept = {name: photo_folder(folder, samples[:2]) for name, folder in folders.items()}
    first = folders["one photo onto itself"] / samples[0].name
    runs = {
        "into itself": ("--image", folders["into itself"], "--output", folders["into itself"]),
        "json on a photo": ("--image", folders["json on a photo"], "--json", folders["json on a photo"] / samples[1].name),
        "one photo onto itself": ("--image", first, "--output", first),
        "many": ("--image", *sorted(folders["many"].iterdir()), "--output", folders["many"] / "result.jpg"),
    }
    results = run_all({name: ("detect_mask_image.py", *args, "--no-display") for name, args in runs.items()})
    return SimpleNamespace(results=results, folders=folders, kept=kept)


def test_output_into_the_input_folder_is_refused(refused_runs, samples):
    """Once: annotated copies would replace the photos."""
    folder = refused_runs.folders["into itself"]
    assert_one_line_error(
        refused_runs.results["into itself"], f"--output {folder} would overwrite the input photo {folder / samples[0].name}"
    )
    assert_unchanged(folder, refused_runs.kept["into itself"])
    assert_one_line_error(refused_runs.results["one photo onto itself"], "would overwrite the input photo")
    assert_unchanged(refused_runs.folders["one photo onto itself"], refused_runs.kept["one photo onto itself"])


def test_json_naming_an_input_photo_is_refused(refused_runs, samples):
    """Once: the JSON Lines would have replaced the photo before it was read."""
    folder = refused_runs.folders["json on a photo"]
    assert_one_line_error(
        refused_runs.results["json on a photo"], f"--json {folder / samples[1].name} is one of the input photos"
    )
    assert_unchanged(folder, refused_runs.kept["json on a photo"])


def test_image_named_output_for_several_photos_is_refused(refused_runs):
    """Once: `--output result.jpg` for two photos made a folder named result.jpg."""
    folder = refused_runs.folders["many"]
    assert_one_line_error(
        refused_runs.results["many"], f"--output {folder / 'result.jpg'} names one image, but there are 2 photos"
    )
    assert_unchanged(folder, refused_runs.kept["many"])


def test_photos_with_one_name_in_two_folders_are_both_kept(samples, default_model, tmp_path):
    """Once: copies of a.jpg from two folders overwrote each other; now the input tree is mirrored."""
    photo_folder(tmp_path / "monday", [samples[0]], ["photo.jpg"])
    photo_folder(tmp_path / "tuesday", [samples[4]], ["photo.jpg"])
    photo_folder(tmp_path / "tuesday", [samples[1]])
    result = run_script(
        "detect_mask_image.py", "--image", tmp_path / "monday", tmp_path / "tuesday", "--no-display",
        "--output", tmp_path / "annotated", "--json", tmp_path / "results.jsonl",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    written = sorted(str(p.relative_to(tmp_path / "annotated")) for p in (tmp_path / "annotated").rglob("*.jpg"))
    assert written == ["monday/photo.jpg", f"tuesday/{samples[1].name}", "tuesday/photo.jpg"]
    for record in records:
        copy = tmp_path / "annotated" / Path(record["image"]).relative_to(tmp_path)
        assert cv2.imread(str(copy)).shape[:2] == (record["height"], record["width"])
    assert {(r["width"], r["height"]) for r in records[:1] + records[2:]} == {
        cv2.imread(str(p)).shape[1::-1] for p in (samples[0], samples[4])
    }


def fill_up(disk, leave):
    """Fill the file system of ``disk`` until only ``leave`` bytes are free."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as stream:
        try:
            while stream.write(b"\0" * 4096):
                pass
        except OSError:
            pass  # full
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def test_full_disk_says_so_and_leaves_no_partial_file(samples, default_model, tmp_path):
    """Once: a truncated JPEG, a lost JSON line, `unexpected OSError`; now one line, nothing half-written."""
    with small_disk(tmp_path / "images disk") as images_disk, small_disk(tmp_path / "json disk") as json_disk:
        for disk in (images_disk, json_disk):
            (disk / "results.jsonl").write_text('{"image": "from an earlier run"}\n')
        fill_up(images_disk, leave=16_000)  # less than one annotated photo
        fill_up(json_disk, leave=0)
        runs = {
            "images": ("detect_mask_image.py", "--image", *samples[:3], "--no-display",
                       "--output", images_disk / "annotated", "--json", images_disk / "results.jsonl"),
            "json": ("detect_mask_image.py", "--image", *samples[:3], "--no-display", "--json", json_disk / "results.jsonl"),
        }
        results = run_all(runs)
        assert_one_line_error(results["images"], f"no space left on device writing {images_disk / 'annotated'}")
        assert_one_line_error(results["json"], f"no space left on device writing {json_disk / 'results.jsonl'}")
        for disk in (images_disk, json_disk):
            left = sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))
            assert left in (["filler", "results.jsonl"], ["annotated", "filler", "results.jsonl"]), left
            assert (disk / "results.jsonl").read_text() == '{"image": "from an earlier run"}\n'
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(samples[0]), "--no-display", "--json", "-"],
            cwd=ROOT, env=script_env(), stdout=full, stderr=subprocess.PIPE, text=True, timeout=300,
        )
    assert_one_line_error(result, "no space left on device writing standard output")


def test_two_runs_writing_one_json_file_at_once(default_model, tmp_path):
    """Once: interleaved lines and NUL bytes before; now the file is one whole run's lines."""
    observations = require(DATASET / "observations")
    sets = [sorted((observations / folder).glob("*.jpg"))[:60] for folder in ("with_mask", "without_mask")]
    results = tmp_path / "shared" / "results.jsonl"
    processes = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", *map(str, photos), "--no-display",
             "--single-scale", "--json", str(results)],
            cwd=ROOT, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for photos in sets
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode in (0, 1), stderr[-3000:]
        assert "Traceback" not in stderr and "unexpected" not in stderr, stderr[-3000:]
    data = results.read_bytes()
    assert b"\0" not in data
    images = [json.loads(line)["image"] for line in data.decode().splitlines()]
    assert images in ([str(p) for p in sets[0]], [str(p) for p in sets[1]])
    assert [p.name for p in results.parent.iterdir()] == ["results.jsonl"]  # no partial file left


def test_display_that_does_not_answer(samples, tmp_path):
    """Once: Qt aborted the process (exit 134) and left an empty JSON file."""
    number = next(n for n in range(99, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    result = run_script(
        "detect_mask_image.py", "--image", samples[0], "--json", tmp_path / "results.jsonl",
        env=script_env(DISPLAY=f":{number}"),
    )
    assert_one_line_error(result, f"cannot open a window on display :{number}; run with --no-display")
    assert not (tmp_path / "results.jsonl").exists()


def png_header(width, height):
    """A PNG file that claims ``width`` x ``height`` pixels and holds almost none of them."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def run_measuring_memory(tmp_path, *args):
    """Run the image script; its exit status, stderr and peak memory (bytes) of that process alone."""
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "detect_mask_image.py"), *map(str, args)],
            cwd=ROOT, env=script_env(), stdout=subprocess.DEVNULL, stderr=stderr,
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, (tmp_path / "stderr").read_text(), usage.ru_maxrss * 1024


def test_huge_images_and_huge_junk_are_refused_from_their_header(samples, default_model, tmp_path):
    """Once: 6 GB for a 30000x30000 PNG, and a 4 GB junk file read whole; now neither is loaded."""
    folder = tmp_path / "photos"
    photo_folder(folder, [samples[0]])
    (folder / "huge.png").write_bytes(png_header(30000, 30000))
    with open(folder / "junk.jpg", "wb") as junk:
        junk.truncate(4 * 2**30)  # sparse: 4 GB that take no disk
    status, stderr, peak = run_measuring_memory(
        tmp_path, "--image", folder, "--no-display", "--json", tmp_path / "results.jsonl"
    )
    assert status == 1, stderr[-3000:]
    records = read_records(tmp_path / "results.jsonl")
    assert_error_record(records["huge.png"], "is 30000x30000 = 900000000 pixels, more than the limit of 200000000")
    assert records["huge.png"]["error"].endswith("raise it with --max-pixels")
    assert_error_record(records["junk.jpg"], "junk.jpg is not an image file")
    assert set(records[samples[0].name]) == IMAGE_KEYS
    assert peak < 3 * 2**30, f"peak memory {peak / 2**30:.1f} GB: the junk file was read"


def test_max_pixels_sets_the_limit(samples, default_model, tmp_path):
    height, width = cv2.imread(str(samples[0])).shape[:2]
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(samples[0])), (width // 2, height // 2)))
    limit = width * height - 1
    result = run_script("detect_mask_image.py", "--image", samples[0], small, "--no-display",
                        "--max-pixels", limit, "--json", tmp_path / "results.jsonl")
    assert result.returncode == 1, result.stderr[-3000:]
    records = read_records(tmp_path / "results.jsonl")
    assert_error_record(records[samples[0].name], f"more than the limit of {limit}")
    assert set(records["small.jpg"]) == IMAGE_KEYS


@pytest.fixture(scope="module")
def folder_runs(samples, tmp_path_factory):
    """A folder of photos with a sub-folder, a FIFO and a broken link, searched with and without --recursive."""
    base = tmp_path_factory.mktemp("tree")
    folder = base / "photos"
    photo_folder(folder, [samples[0]])
    photo_folder(folder / "sub", [samples[1]])
    os.mkfifo(folder / "fifo.jpg")
    (folder / "broken.jpg").symlink_to(base / "gone.jpg")
    runs = {
        "flat": ("--image", folder, "--json", base / "flat.jsonl"),
        "recursive": ("--image", folder, "--recursive", "--output", base / "annotated", "--json", base / "deep.jsonl"),
        "fifo": ("--image", folder / "fifo.jpg"),
        "broken link": ("--image", folder / "broken.jpg"),
    }
    results = run_all({name: ("detect_mask_image.py", *args, "--no-display") for name, args in runs.items()})
    return SimpleNamespace(results=results, folder=folder, base=base)


def test_sub_folders_are_searched_only_when_asked(folder_runs, samples):
    """Once: sub-folders were skipped without a word; now said, and searched with --recursive."""
    flat, folder = folder_runs.results["flat"], folder_runs.folder
    assert flat.returncode == 0, flat.stderr[-3000:]
    assert f"note: 1 sub-folder of {folder} not searched (sub); add --recursive" in flat.stderr.splitlines()
    assert list(read_records(folder_runs.base / "flat.jsonl")) == [samples[0].name]
    deep = folder_runs.results["recursive"]
    assert deep.returncode == 0, deep.stderr[-3000:]
    assert "not searched" not in deep.stderr
    assert sorted(read_records(folder_runs.base / "deep.jsonl")) == sorted([samples[0].name, samples[1].name])
    annotated = folder_runs.base / "annotated"
    written = sorted(str(p.relative_to(annotated)) for p in annotated.rglob("*.jpg"))
    assert written == sorted([samples[0].name, f"sub/{samples[1].name}"])


def test_fifo_and_broken_link_are_called_what_they_are(folder_runs):
    """Once: both were reported as "does not exist"."""
    folder, results = folder_runs.folder, folder_runs.results
    assert_one_line_error(results["fifo"], f"{folder / 'fifo.jpg'} is a FIFO (named pipe), not a file")
    assert_one_line_error(results["broken link"], f"{folder / 'broken.jpg'} is a broken symbolic link (to ")
    notes = results["flat"].stderr.splitlines()
    assert f"note: skipping {folder / 'fifo.jpg'}: it is a FIFO (named pipe), not a file" in notes
    assert any(line.startswith(f"note: skipping {folder / 'broken.jpg'}: it is a broken symbolic link") for line in notes)


def test_make_demo_prints_only_the_projects_own_lines(samples, default_model, tmp_path):
    """No OpenCV, TensorFlow or oneDNN lines, for a user who set nothing; --verbose shows them."""
    result = run_script(
        "detect_mask_image.py", "--image", "samples", "--no-display", "--output", tmp_path / "samples",
        "--json", tmp_path / "samples.jsonl", env=user_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(samples)
    assert all(re.fullmatch(r"samples/\S+\.jpg: \d+ faces?, \d+ mask, \d+ no mask, \d+ mask worn wrongly"
                            r"(, \d+ not judged)?", line) for line in lines), lines
    verbose = run_script("detect_mask_image.py", "--image", samples[0], "--no-display", "--verbose", env=user_env())
    assert verbose.returncode == 0, verbose.stderr
    assert "setPreferableTarget" in verbose.stderr  # OpenCV's own warning, hidden by default


def test_image_window_shows_small_photos_enlarged_and_says_how_to_close(display, samples, default_model, tmp_path):
    """The window is the photo's size (small photos enlarged to be readable), its title tells which key closes it.

    And Qt's font warnings stay off the console, for a user who set nothing.
    """
    from mask_detector.display import photo_scale

    height, width = cv2.imread(str(samples[0])).shape[:2]
    scale = photo_scale(height, width)
    assert scale > 1  # the sample photos are small
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(samples[0])],
        cwd=ROOT, env=user_env() | {"DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shot = watch(process, display)
    if shot is None:
        process.kill()
        pytest.fail(f"no annotated window seen; stderr: {process.communicate()[1][-2000:]}")
    window = str(find_window(process, display))
    xdotool = {**os.environ, "DISPLAY": display}
    title = subprocess.run(["xdotool", "getwindowname", window], env=xdotool, capture_output=True, text=True).stdout
    geometry = subprocess.run(["xdotool", "getwindowgeometry", window], env=xdotool,
                              capture_output=True, text=True).stdout
    press_key(display, window, "x")  # any key, as the title says
    _, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, stderr
    assert stderr == ""
    assert title.strip() == f"Face mask detector: {samples[0].name} (any key closes)"
    assert f"Geometry: {round(width * scale)}x{round(height * scale)}" in geometry
    from PIL import Image

    Image.fromarray(shot).save(tmp_path / "small_photo_window.png")


def test_workers_and_ray_write_what_one_process_writes(samples, default_model, tmp_path):
    """Two processes, and a real local Ray instance: the same JSON bytes and annotated images, in order."""
    def outputs(name):
        return "--output", tmp_path / name, "--json", tmp_path / f"{name}.jsonl"

    runs = {
        name: ("detect_mask_image.py", "--image", samples[0].parent, "--no-display", *flags, *outputs(name))
        for name, flags in {"one": ("--workers", 1), "two": ("--workers", 2), "ray": ("--ray", "local")}.items()
    }
    results = run_all(runs)
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-3000:])
        assert result.stdout == results["one"].stdout
    expected = (tmp_path / "one.jsonl").read_bytes()
    assert [json.loads(line)["image"] for line in expected.splitlines()] == [str(p) for p in samples]
    for name in ("two", "ray"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == expected, name
        for photo in samples:
            assert (tmp_path / name / photo.name).read_bytes() == (tmp_path / "one" / photo.name).read_bytes()


def start_and_stop(command, stop, after_lines):
    """Start a run, and once it has printed ``after_lines`` photo lines, call ``stop(process)``; its result."""
    process = subprocess.Popen(command, cwd=ROOT, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=ctrl_c_at_default)
    for _ in range(after_lines):
        assert process.stdout.readline(), process.communicate(timeout=60)[1][-3000:]
    stop(process)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def kill_a_worker(process):
    found = subprocess.run(["pgrep", "-P", str(process.pid), "-f", "spawn_main"], capture_output=True, text=True)
    os.kill(int(found.stdout.split()[0]), 9)


def test_an_interrupted_run_resumes_and_never_loses_a_written_line(samples, default_model, tmp_path):
    """Ctrl-C, SIGTERM and a killed worker each stop a run; the same command then does only the rest."""
    folder = tmp_path / "archive"
    folder.mkdir()
    # 240 photos: far more than a run does between its third line and the signal, however loaded the machine.
    for copy in range(40):
        for photo in samples:
            (folder / f"{copy}_{photo.name}").write_bytes(photo.read_bytes())
    results = tmp_path / "results.jsonl"
    command = [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(folder), "--no-display",
               "--single-scale", "--workers", "2", "--json", str(results)]
    lines = []
    for stop, status in ((lambda p: p.send_signal(2), 130), (lambda p: p.terminate(), 143), (kill_a_worker, 1)):
        returncode, stderr = start_and_stop(command, stop, after_lines=3)
        assert returncode == status, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        written = results.read_text().splitlines()
        assert written[:len(lines)] == lines and len(written) >= len(lines) + 3, stderr[-3000:]
        lines = written
    assert "run the same command again" in stderr.splitlines()[-1]
    finished = run_script(*command[1:])
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"note: {len(lines)} images already in {results}, skipped" in finished.stderr
    written = results.read_text().splitlines()
    assert written[:len(lines)] == lines
    assert sorted(json.loads(line)["image"] for line in written) == sorted(str(p) for p in folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive", "results.jsonl"]  # no partial file left


def test_ray_not_installed_is_told_in_one_line(samples, tmp_path):
    """A real Python without Ray (the OpenCV 4 environment: OpenCV and NumPy only), as without the optional extra."""
    python = ROOT / ".venv-opencv4" / "bin" / "python"
    assert python.is_file(), "the OpenCV 4 environment is missing: `make test` creates .venv-opencv4"
    without_ray = subprocess.run([python, "-c", "import ray"], capture_output=True, text=True)
    assert "No module named 'ray'" in without_ray.stderr
    result = run_script("detect_mask_image.py", "--image", samples[0], "--no-display", "--ray", "local", python=python)
    assert_one_line_error(result, "--ray needs Ray: pip install -r requirements-ray.txt")
    assert result.stderr == "error: --ray needs Ray: pip install -r requirements-ray.txt\n"


def run_on_a_terminal(*args):
    """Run detect_mask_image.py with its stderr on a pseudo-terminal, as a user at a console; (status, stdout, stderr)."""
    import fcntl
    import pty
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a new pty is 0 x 0
    process = subprocess.Popen([sys.executable, ROOT / "detect_mask_image.py", *map(str, args)], cwd=ROOT,
                               env=script_env(), stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    stdout = process.stdout.read()
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the script closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return process.wait(timeout=60), stdout, seen.decode("utf-8", "replace")


def test_a_terminal_gets_a_progress_bar_and_verbose_adds_every_line(samples, default_model):
    flags = ("--image", *samples, "--no-display", "--workers", 1, "--single-scale")
    status, stdout, stderr = run_on_a_terminal(*flags)
    assert status == 0, stderr[-3000:]
    assert f"{len(samples)}/{len(samples)}" in stderr and "image/s" in stderr, stderr[-3000:]
    assert stdout == ""  # the bar replaces the lines per photo
    status, stdout, stderr = run_on_a_terminal(*flags, "--verbose")
    assert status == 0, stderr[-3000:]
    assert "image/s" in stderr
    assert [line.split(":")[0] for line in stdout.splitlines()] == [str(p) for p in samples]


def test_a_missing_model_on_ray_is_told_in_one_line(samples, tmp_path):
    result = run_script("detect_mask_image.py", "--image", *samples[:2], "--no-display", "--ray", "local",
                        "--model", tmp_path / "missing.h5", "--json", tmp_path / "results.jsonl")
    assert_one_line_error(result, f"model file {tmp_path / 'missing.h5'} not found")
    assert not (tmp_path / "results.jsonl").exists()


def test_resuming_redoes_photos_made_with_other_settings_and_says_which_lines_are_for_deleted_photos(
        samples, tmp_path):
    """Issue 20, case 10: the same --json with --detector ssd --confidence 0.95 redoes every photo."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in samples[:2]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    results = tmp_path / "results.jsonl"

    def run(*options):
        result = run_script("detect_mask_image.py", "--image", folder, "--no-display", "--single-scale",
                            "--workers", 1, "--json", results, *options)
        assert result.returncode == 0, result.stderr[-3000:]
        notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
        return notes, [json.loads(line) for line in results.read_text().splitlines()]

    _, first = run()
    model = ROOT / "models" / "mask_detector_float16.tflite"
    assert first[0]["settings"] == {
        "model": "mask_detector_float16.tflite", "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "face_detector": "yunet", "confidence": None, "detect_size": 1280, "single_scale": True,
        "preprocess": "auto"}
    notes, second = run("--detector", "ssd", "--confidence", "0.95")
    assert notes == [f"note: done again: 2 images of {results} made with other settings "
                     "(face_detector yunet, now ssd; confidence default, now 0.95)"]
    assert [r["settings"]["face_detector"] for r in second] == ["ssd", "ssd"]
    notes, third = run("--detector", "ssd", "--confidence", "0.95")
    assert notes == [f"note: 2 images already in {results}, skipped; the rest are added (--restart: all again)"]
    assert third == second
    (folder / samples[0].name).unlink()
    notes, fourth = run("--detector", "ssd", "--confidence", "0.95")
    assert notes == [
        f"note: 1 image already in {results}, skipped; the rest are added (--restart: all again)",
        f"note: kept as they were: 1 line of {results} for photos that no longer exist ({folder / samples[0].name})",
    ]
    assert fourth == third


def test_ray_at_an_address_where_nothing_listens_is_one_line_within_the_timeout(samples, tmp_path):
    """Issue 20, case 4: a real local port with nothing listening; Ray alone waited for more than ten minutes."""
    import socket

    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        start = time.monotonic()
        result = run_script("detect_mask_image.py", "--image", samples[0], "--no-display", "--json",
                            tmp_path / "results.jsonl", "--ray", address, "--timeout", 5, timeout=120)
        seconds = time.monotonic() - start
        line = assert_one_line_error(result, f"cannot reach a Ray cluster at {address} (connection refused)")
        assert "please report" not in line
        assert seconds < 30, seconds
        assert not (tmp_path / "results.jsonl").exists()
    environment = script_env()
    environment.pop("RAY_ADDRESS", None)
    result = run_script("detect_mask_image.py", "--image", samples[0], "--no-display", "--ray", "auto",
                        env=environment, timeout=120)
    line = assert_one_line_error(result, "cannot reach a Ray cluster at auto: none runs on this machine")
    assert "please report" not in line and "--address" not in line


def test_a_keras_model_says_that_it_is_loading_on_a_terminal(samples, default_model):
    """Issue 20 (smaller): an .h5 printed nothing for 15 s while TensorFlow loaded."""
    status, stdout, stderr = run_on_a_terminal("--image", samples[0], "--no-display", "--model", default_model)
    assert status == 0, stderr[-3000:]
    assert any(line.startswith(f"loading {default_model.name} with TensorFlow")
               for line in stderr.splitlines()), stderr[-3000:]
    status, _, stderr = run_on_a_terminal("--image", samples[0], "--no-display")  # the .tflite default
    assert status == 0 and "loading" not in stderr, stderr[-3000:]


def test_a_file_name_that_is_not_utf8_is_valid_json_and_resumes(samples, tmp_path):
    """Issue 20 (smaller): such names were written as lone surrogates ("\\udce9"), which most JSON readers refuse."""
    folder = tmp_path / "archive"
    folder.mkdir()
    latin1 = os.fsdecode(b"caf\xe9.jpg")  # 'café.jpg' as an old Latin-1 archive names it
    (folder / latin1).write_bytes(samples[0].read_bytes())
    (folder / "plain.jpg").write_bytes(samples[1].read_bytes())
    results = tmp_path / "results.jsonl"
    command = ("detect_mask_image.py", "--image", folder, "--no-display", "--single-scale", "--workers", 1,
               "--json", results)
    first = run_script(*command)
    assert first.returncode == 0, first.stderr[-3000:]
    text = results.read_bytes().decode("utf-8")  # strict: every byte is UTF-8
    assert "\\ud" not in text
    images = [json.loads(line)["image"] for line in text.splitlines()]
    assert images == [str(folder / "caf\\xe9.jpg"), str(folder / "plain.jpg")]
    again = run_script(*command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"note: 2 images already in {results}, skipped" in again.stderr
    assert "no longer exist" not in again.stderr


def test_recursive_search_mirrors_only_the_folders_that_tell_photos_apart(samples, tmp_path):
    """Issue 20 (smaller): one photo found deep in a --recursive search was copied to OUTPUT/a/b/photo.jpg."""
    photo_folder(tmp_path / "one" / "a" / "b", [samples[0]])
    photo_folder(tmp_path / "two" / "a" / "b", [samples[0]])
    photo_folder(tmp_path / "two" / "a" / "c", [samples[1]])
    results = run_all({name: ("detect_mask_image.py", "--image", tmp_path / name, "--recursive", "--no-display",
                              "--output", tmp_path / f"{name} annotated") for name in ("one", "two")})
    for name, result in results.items():
        assert result.returncode == 0, result.stderr[-3000:]
    written = {name: sorted(p.relative_to(tmp_path / f"{name} annotated").as_posix()
                            for p in (tmp_path / f"{name} annotated").rglob("*.jpg")) for name in ("one", "two")}
    assert written == {"one": [samples[0].name], "two": sorted([f"b/{samples[0].name}", f"c/{samples[1].name}"])}
