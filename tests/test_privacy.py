"""mask_detector/privacy.py, through the photo and live scripts: pixelated faces no face detector finds,
no picture at all in stats mode, and retention that deletes only the project's own old files."""

import json
import os
import time

import cv2
import numpy as np
import pytest

from support.media import make_clip
from support.scripts import assert_one_line_error, run_script

PICTURE_SUFFIXES = {".jpg", ".jpeg", ".png", ".mp4", ".avi", ".mkv", ".mov", ".webp"}


@pytest.fixture(scope="module")
def face_detector():
    from mask_detector.faces import YuNetDetector

    # Both passes, as the photo script searches: the blurred faces must hide from its best effort.
    return YuNetDetector(single_scale=False)


def with_faces(samples, count):
    names = {1: "maksssksksss716.jpg", 3: "maksssksksss244.jpg", 6: "maksssksksss148.jpg"}
    return next(p for p in samples if p.name == names[count])


def test_pixelate_leaves_blocks_and_keeps_the_rest(samples):
    from mask_detector.privacy import BLOCKS, pixelate

    image = cv2.imread(str(samples[0]))
    before = image.copy()
    pixelate(image, [(100, 100, 200, 200)])
    region = image[70:230, 70:230]  # the box grown by its margin, 30 px on each side
    assert len(np.unique(region.reshape(-1, 3), axis=0)) <= BLOCKS * BLOCKS
    assert np.array_equal(image[:70], before[:70]) and np.array_equal(image[230:], before[230:])
    assert not np.array_equal(region, before[70:230, 70:230])
    # A small face is one patch of one colour: at a few pixels a block, a face search still finds it.
    pixelate(image, [(300, 20, 312, 34)])
    assert len(np.unique(image[15:38, 296:315].reshape(-1, 3), axis=0)) == 1


def test_blurred_photos_show_no_face_a_face_detector_finds(samples, tmp_path, face_detector):
    photos = [with_faces(samples, 6), with_faces(samples, 3)]
    plain = run_script("detect_mask_image.py", "--image", *photos, "--no-display", "--workers", 1,
                       "--json", tmp_path / "plain.jsonl")
    assert plain.returncode == 0, plain.stderr[-3000:]
    result = run_script("detect_mask_image.py", "--image", *photos, "--no-display", "--workers", 1,
                        "--privacy", "blur", "--output", tmp_path / "blurred", "--json", tmp_path / "blurred.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    # The same faces and labels: only the pictures change.
    faces = [[r["faces"] for r in map(json.loads, (tmp_path / name).read_text().splitlines())]
             for name in ("plain.jsonl", "blurred.jsonl")]
    assert faces[0] == faces[1]
    for photo in photos:
        assert len(face_detector.detect(cv2.imread(str(photo)))) >= 3
        blurred = cv2.imread(str(tmp_path / "blurred" / photo.name))
        assert blurred is not None and blurred.shape == cv2.imread(str(photo)).shape
        assert face_detector.detect(blurred) == []


def test_a_blurred_video_shows_no_face_in_any_frame(samples, tmp_path, face_detector):
    # Searched harder than the live script searches (twice, larger): its doubtful faces were hidden too.
    clip = make_clip([with_faces(samples, 6), with_faces(samples, 3)], tmp_path / "clip.mp4", frames_per_photo=6)
    output = tmp_path / "blurred.avi"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--privacy", "blur",
                        "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    source, written = cv2.VideoCapture(str(clip)), cv2.VideoCapture(str(output))
    frames = 0
    while True:
        ok, frame = written.read()
        if not ok:
            break
        ok, original = source.read()
        assert ok
        frames += 1
        assert len(face_detector.detect(original)) >= 3
        assert face_detector.detect(frame) == [], f"a face found in frame {frames}"
    assert frames == 12


def test_faces_in_an_ignore_zone_are_no_people_but_are_hidden_all_the_same(samples, tmp_path, face_detector):
    clip = make_clip([with_faces(samples, 6)], tmp_path / "clip.mp4", frames_per_photo=6)
    output = tmp_path / "blurred.avi"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--privacy", "blur",
                        "--zone", "poster:ignore:0,0 1,0 1,1 0,1", "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    assert " people 0 (" in result.stdout  # no one is a person in the zone ...
    written, frames = cv2.VideoCapture(str(output)), 0
    while True:
        ok, frame = written.read()
        if not ok:
            break
        frames += 1
        assert face_detector.detect(frame) == [], f"a face found in frame {frames}"  # ... and every face is hidden
    assert frames == 6


def test_stats_writes_no_picture_anywhere(samples, tmp_path):
    photos = [with_faces(samples, 1), with_faces(samples, 3)]
    result = run_script("detect_mask_image.py", "--image", *photos, "--no-display", "--privacy", "stats",
                        "--json", tmp_path / "photos.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    clip = make_clip([with_faces(samples, 1)], tmp_path / "clip.mp4", frames_per_photo=12)
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--privacy", "stats",
                        "--json", tmp_path / "frames.jsonl", "--events", tmp_path / "events.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(json.loads(line).get("event") == "alert" for line in (tmp_path / "events.jsonl").open())
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path != clip]
    assert sorted(path.name for path in written) == ["events.jsonl", "frames.jsonl", "photos.jsonl"]


@pytest.mark.parametrize("flag, script", [
    ("--output", "detect_mask_image.py"), ("--output", "detect_mask_video.py"),
    ("--snapshots", "detect_mask_video.py"), ("--clips", "detect_mask_video.py"),
])
def test_stats_refuses_every_picture_output(samples, tmp_path, flag, script):
    source = ["--image", samples[0]] if script == "detect_mask_image.py" else ["--source", samples[0]]
    target = tmp_path / ("pictures" if flag != "--output" or script == "detect_mask_image.py" else "out.mp4")
    result = run_script(script, *source, "--no-display", "--privacy", "stats", flag, target)
    assert_one_line_error(result, "--privacy stats writes no pictures", flag)
    assert not target.exists()


def test_keep_days_needs_a_folder_to_keep(samples):
    result = run_script("detect_mask_video.py", "--source", samples[0], "--no-display", "--keep-days", 3)
    assert_one_line_error(result, "--keep-days", "--snapshots", "--clips")


def test_retention_deletes_only_its_own_old_files(samples, tmp_path):
    clip = make_clip([with_faces(samples, 1)], tmp_path / "clip.mp4", frames_per_photo=15)
    snapshots = tmp_path / "snapshots"
    first = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--snapshots", snapshots,
                       "--keep-days", 2)
    assert first.returncode == 0, first.stderr[-3000:]
    ours = sorted(path for path in snapshots.glob("*.jpg"))
    assert ours, first.stdout
    # Three days later, a user's files stand beside ours: one named like ours, one old, one new.
    three_days_ago = time.time() - 3 * 86400
    lookalike = snapshots / "person00077_no_mask_1.0s.jpg"
    lookalike.write_bytes(ours[0].read_bytes())
    notes = snapshots / "notes.txt"
    notes.write_text("keep me")
    for path in ours + [lookalike, notes]:
        os.utime(path, (three_days_ago, three_days_ago))
    recent = snapshots / "today.jpg"
    recent.write_bytes(b"not ours either")
    # The next run sweeps at its start; one frame shows nobody long enough to be alerted.
    second = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--snapshots", snapshots,
                        "--keep-days", 2, "--max-frames", 1)
    assert second.returncode == 0, second.stderr[-3000:]
    assert not any(path.exists() for path in ours)
    assert lookalike.exists() and notes.read_text() == "keep me" and recent.exists()
    assert (snapshots / ".mask-detector-files.jsonl").read_text() == ""


# Once only the size was compared: a user's picture of the same size, saved over ours, was deleted.
@pytest.mark.parametrize("replacement", [b"a user's own picture, saved over ours", b"y" * 100])
def test_retention_keeps_a_file_of_ours_that_was_replaced(tmp_path, replacement):
    from mask_detector.privacy import OwnFiles

    own_files = OwnFiles(tmp_path, keep_days=1)
    ours, replaced = tmp_path / "a.jpg", tmp_path / "b.jpg"
    for path in (ours, replaced):
        path.write_bytes(b"x" * 100)
        own_files.add(path)
    replaced.write_bytes(replacement)
    old = time.time() - 2 * 86400
    for path in (ours, replaced):
        os.utime(path, (old, old))
    assert own_files.sweep() == ["a.jpg"]
    assert replaced.exists() and not ours.exists()
    # Not ours any more: forgotten, so never deleted later either.
    assert own_files.sweep(time.time() + 10 * 86400) == []
    assert replaced.exists()
