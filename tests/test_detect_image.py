"""detect_mask_image.py on the real sample photos, with the shipped model and real detector weights."""

import json

import cv2
import numpy as np
import pytest

from conftest import VOC_DEV, match_to_truth, require, run_script
from mask_detector.evaluation import load_voc

FACE_KEYS = {"box", "detection_score", "label", "mask_probability"}


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
        assert set(record) == {"image", "width", "height", "faces"}
        height, width = cv2.imread(str(path)).shape[:2]
        assert (record["width"], record["height"]) == (width, height)
        for face in record["faces"]:
            assert set(face) == FACE_KEYS
            x1, y1, x2, y2 = face["box"]
            assert all(type(v) is int for v in face["box"])
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            assert 0.0 <= face["detection_score"] <= 1.0
            assert 0.0 <= face["mask_probability"] <= 1.0
            assert face["label"] == ("mask" if face["mask_probability"] >= 0.5 else "no_mask")


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
        masked = sum(f["label"] == "mask" for f in faces)
        assert line == f"{record['image']}: {len(faces)} faces, {masked} mask, {len(faces) - masked} no mask"


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
