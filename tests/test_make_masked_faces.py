"""make_masked_faces.py on a dozen real unmasked faces: the class folders, sources.jsonl, repeatability, refusals."""

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from mask_detector.labels import FOLDERS
from support.scripts import DATASET, assert_one_line_error, require, run_script, user_env

CLASSES = tuple(FOLDERS.values())


def copy_faces(folder, count=12):
    folder.mkdir()
    for photo in sorted(require(DATASET / "observations" / "without_mask").glob("*.jpg"))[:count]:
        shutil.copyfile(photo, folder / photo.name)
    return folder


def files_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_writes_three_classes_with_their_sources_and_repeats_exactly(tmp_path):
    faces = copy_faces(tmp_path / "faces")
    output = tmp_path / "synthetic"
    arguments = ("--faces", faces, "--seed", "3", "--per-face-negative", "1", "--per-face-touched", "0",
                 "--per-face-turned-bare", "0")
    result = run_script("make_masked_faces.py", *arguments, "--output", output)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("12 photos read") and "faces used" in summary, summary

    images = {p.relative_to(output).as_posix() for p in output.rglob("*.jpg")}
    records = [json.loads(line) for line in (output / "sources.jsonl").read_text().splitlines()]
    assert {r["image"] for r in records} == images and len(records) == len(images)
    counts = {name: sum(1 for image in images if image.startswith(name + "/")) for name in CLASSES}
    used = len({r["source"] for r in records})
    assert used >= 8, summary  # a few of these photos hold no usable face
    # One image a class per face, as asked, each named after its source.
    assert counts == {name: used for name in CLASSES}, counts
    for record in records:
        source = Path(record["source_path"])  # as given: --faces was given whole here
        assert source.parent == faces
        assert hashlib.sha256(source.read_bytes()).hexdigest() == record["source"]
        assert record["image"].split("/")[1].startswith(record["source"][:16])
        image = cv2.imread(str(output / record["image"]))
        height, width = cv2.imread(str(source)).shape[:2]
        if record["image"].endswith(tuple(f"_cut_{n}.jpg" for n in range(3))):  # cut by the edge: smaller
            assert image.shape[0] <= height and image.shape[1] <= width and image.shape[0] * image.shape[1] < height * width
        else:
            assert image is not None and image.shape[:2] == (height, width)

    # The same seed gives the same bytes, into a new folder or over the first run's own files.
    first = files_of(output)
    again = run_script("make_masked_faces.py", *arguments, "--output", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert files_of(tmp_path / "again") == first
    over = run_script("make_masked_faces.py", *arguments, "--output", output)
    assert over.returncode == 0, over.stderr
    assert files_of(output) == first
    other = run_script("make_masked_faces.py", *arguments[:3], "4", *arguments[4:], "--output", tmp_path / "other")
    assert other.returncode == 0, other.stderr
    different = files_of(tmp_path / "other")

    def first_masks(files):  # each source's image with a mask worn correctly (its name says how it is seen)
        return {name.split("/")[1][:16]: data for name, data in files.items() if name.startswith("with_mask/")}

    # Another seed draws another mask on every face.
    again_masks, first_masks_ = first_masks(different), first_masks(first)
    assert again_masks.keys() == first_masks_.keys() and len(again_masks) == counts["with_mask"]
    assert all(again_masks[source] != first_masks_[source] for source in again_masks)


def test_other_views_turned_touched_cut_and_bare(tmp_path):
    """Turned faces (masked, wrongly masked and bare), hands on masks worn right and wrongly, faces cut by the
    edge, heads tilted."""
    faces = copy_faces(tmp_path / "faces")
    output = tmp_path / "synthetic"
    result = run_script("make_masked_faces.py", "--faces", faces, "--seed", "3", "--per-face-touched", "1",
                        "--per-face-turned-bare", "1", "--output", output)
    assert result.returncode == 0, result.stderr
    names = [p.relative_to(output).as_posix() for p in output.rglob("*.jpg")]
    kinds = {name.split("/")[0] + ":" + "_".join(name.split("/")[1].split("_")[1:-1]) for name in names}
    used = len({name.split("/")[1][:16] for name in names})
    # A hand on a mask worn right is a mask; a bare face, always turned, is no mask.
    assert sum(name.startswith("with_mask/") and "_touched" in name for name in names) == used
    assert any(name.startswith("incorrect_mask/") and "_touched" in name for name in names), names
    assert sum(name.startswith("without_mask/") and "_bare_turned" in name for name in names) == used
    assert any(kind.startswith("incorrect_mask:") and "turned" in kind for kind in kinds), kinds
    assert any(kind.startswith("with_mask:correct_turned") for kind in kinds), kinds
    assert any("_cut" in name for name in names), names
    assert any("_tilted" in name for name in names), names
    # Each turned or tilted face's sources.jsonl line says the pose it was drawn at; the others' none.
    records = [json.loads(line) for line in (output / "sources.jsonl").read_text().splitlines()]
    for record in records:
        kind = record["image"].split("/")[1]
        assert ("pose" in record) == ("_turned" in kind or "_tilted" in kind), record
        if "_turned" in kind:
            assert 5 <= abs(record["pose"]["yaw"]) <= 75 and abs(record["pose"]["pitch"]) <= 25


def test_refuses_an_output_inside_the_photos_or_holding_other_files(tmp_path):
    faces = copy_faces(tmp_path / "faces", count=2)
    before = files_of(faces)
    inside = run_script("make_masked_faces.py", "--faces", faces, "--output", faces / "synthetic")
    assert_one_line_error(inside, "overlaps --faces")
    same = run_script("make_masked_faces.py", "--faces", faces, "--output", faces)
    assert_one_line_error(same, "overlaps --faces")
    assert files_of(faces) == before
    crowded = tmp_path / "crowded"
    (crowded / "with_mask").mkdir(parents=True)
    (crowded / "with_mask" / "mine.jpg").write_bytes(b"a photo of the user's")
    taken = run_script("make_masked_faces.py", "--faces", faces, "--output", crowded)
    assert_one_line_error(taken, "did not write")
    assert (crowded / "with_mask" / "mine.jpg").read_bytes() == b"a photo of the user's"


def test_grid_picture(tmp_path):
    faces = copy_faces(tmp_path / "faces")
    grid = tmp_path / "grid.jpg"
    result = run_script("make_masked_faces.py", "--faces", faces, "--grid", grid)
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(grid))
    assert picture is not None and picture.shape[0] > 5 * 200 and picture.shape[1] >= 3 * 200


def test_photos_without_a_usable_face_are_an_error_not_an_empty_dataset(tmp_path):
    """Issue 20 (smaller): the data engine exited 0 after writing no image."""
    faces = tmp_path / "faces"
    faces.mkdir()
    for value in (0, 128, 255):  # plain grey pictures: no face
        cv2.imwrite(str(faces / f"plain {value}.jpg"), np.full((240, 320, 3), value, np.uint8))
    result = run_script("make_masked_faces.py", "--faces", faces, "--output", tmp_path / "synthetic", "--seed", "0")
    line = assert_one_line_error(result, "no image written: none of the 3 photos gave a face to draw on")
    assert "no face 3" in line, line


def test_a_run_prints_only_its_own_lines(tmp_path):
    """Issue 20, case 13: OpenCV's setPreferableTarget warning came on every run (OpenCV was imported first)."""
    faces = copy_faces(tmp_path / "faces", count=2)
    result = run_script("make_masked_faces.py", "--faces", faces, "--output", tmp_path / "synthetic", "--seed", "0",
                        env=user_env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
