"""detect_mask_image.py on the real sample photos: the faces it finds and judges, its JSON lines, images and console."""

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from support.image_script import IMAGE_KEYS
from support.media import match_to_truth
from support.scripts import ROOT, VOC_DEV, read_records, require, run_script, script_env, user_env
from mask_detector.evaluation import load_voc

FACE_KEYS = {"box", "detection_score", "label", "mask_probability", "judged", "pose", "probabilities"}


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


def test_a_keras_model_says_that_it_is_loading_on_a_terminal(samples, default_model):
    """Issue 20 (smaller): an .h5 printed nothing for 15 s while TensorFlow loaded."""
    status, stdout, stderr = run_on_a_terminal("--image", samples[0], "--no-display", "--model", default_model)
    assert status == 0, stderr[-3000:]
    assert any(line.startswith(f"loading {default_model.name} with TensorFlow")
               for line in stderr.splitlines()), stderr[-3000:]
    status, _, stderr = run_on_a_terminal("--image", samples[0], "--no-display")  # the .tflite default
    assert status == 0 and "loading" not in stderr, stderr[-3000:]
