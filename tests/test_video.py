"""detect_mask_video.py on a real video file made from the sample photos."""

import re

import cv2
import pytest

from conftest import run_script

FRAMES_PER_PHOTO = 4
SUMMARY = re.compile(
    r"^frames (\d+), seconds ([\d.]+), fps ([\d.]+), faces (\d+), no_mask (\d+)(, written .+)?( \(.+\))?$"
)


def make_clip(photos, path, size=(640, 480), fps=10):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for photo in photos:
        frame = cv2.resize(cv2.imread(str(photo)), size)
        for _ in range(FRAMES_PER_PHOTO):
            writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip(samples, tmp_path_factory):
    return make_clip(samples, tmp_path_factory.mktemp("video") / "samples clip.mp4")


def summary_of(result):
    lines = result.stdout.strip().splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, result.stdout
    return match


def test_every_frame_of_a_file_is_processed_and_written(clip, samples, default_model, tmp_path):
    output = tmp_path / "annotated.avi"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--output", output)
    assert result.returncode == 0, result.stderr
    frames, _, fps, faces, no_mask = (float(v) for v in summary_of(result).groups()[:5])
    assert frames == len(samples) * FRAMES_PER_PHOTO
    assert fps > 0
    assert faces >= frames  # every sample photo shows at least one face
    assert 0 <= no_mask <= faces
    written = cv2.VideoCapture(str(output))
    assert written.isOpened()
    count = 0
    while True:
        ok, frame = written.read()
        if not ok:
            break
        assert frame.shape[:2] == (480, 640)
        count += 1
    assert count == frames


def test_max_frames_stops_early(clip, default_model):
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--max-frames", 5)
    assert result.returncode == 0, result.stderr
    assert summary_of(result).group(1) == "5"


def test_window_without_display_is_a_clear_error(clip, default_model):
    result = run_script("detect_mask_video.py", "--source", clip)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no display found; run with --no-display")
