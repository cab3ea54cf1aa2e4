"""detect_mask_video.py on real video files made from the sample photos, on bad sources, and in a window."""

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import (
    FRAMES_PER_PHOTO, ROOT, assert_one_line_error, close_window_when_shown, make_clip, run_all, run_script,
    script_env, watch,
)

SUMMARY = re.compile(
    r"^frames (\d+), seconds ([\d.]+), fps ([\d.]+), faces (\d+), no_mask (\d+)(, written .+)?( \(.+\))?$"
)


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


def test_video_window_shows_frames_and_closes_at_the_end(display, samples, default_model, tmp_path):
    clip = make_clip(samples * 5, tmp_path / "clip.mp4")
    process = subprocess.Popen(
        [os.sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip)],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shot = watch(process, display)
    stdout, stderr = process.communicate(timeout=300)
    assert shot is not None, f"no annotated video window seen; stderr: {stderr[-2000:]}"
    assert process.returncode == 0, stderr
    assert stdout.startswith(f"frames {len(samples) * 5 * 4},")


def test_video_window_closed_by_the_user(display, samples, default_model, tmp_path):
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
