"""detect_mask_video.py in a window on a real X server, and with no display or one that does not answer."""

import os
import subprocess
import sys

from support.media import make_clip
from support.scripts import ROOT, assert_one_line_error, run_script, script_env
from support.video_script import STOPPED, SUMMARY
from support.xserver import close_window_when_shown, watch


def test_window_without_display_is_a_clear_error(clip, default_model):
    result = run_script("detect_mask_video.py", "--source", clip)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no display found; run with --no-display")


def test_a_display_that_does_not_answer_is_a_clear_error(clip, tmp_path):
    result = run_script("detect_mask_video.py", "--source", clip, "--json", tmp_path / "frames.jsonl",
                        env=script_env(DISPLAY=":99"))
    assert_one_line_error(result, "cannot open a window on display :99; run with --no-display")
    assert not (tmp_path / "frames.jsonl").exists()


def test_video_window_shows_frames_and_closes_at_the_end(display, samples, default_model, tmp_path):
    # Each photo stays 20 frames: a person's box takes its colour once their label is decided and judged
    # (three answers), so with a new photo every 4 frames the coloured frames were few, and a screenshot
    # on a loaded machine could miss all of them.
    clip = make_clip(samples * 2, tmp_path / "clip.mp4", frames_per_photo=20)
    process = subprocess.Popen(
        [os.sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip)],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shot = watch(process, display)
    stdout, stderr = process.communicate(timeout=300)
    assert shot is not None, f"no annotated video window seen; stderr: {stderr[-2000:]}"
    assert process.returncode == 0, stderr
    assert stdout.startswith(f"frames {len(samples) * 2 * 20},")


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
    assert summary and summary.group(STOPPED) == " (window closed)", stdout
    assert 0 < int(summary.group(1)) < len(samples) * 15 * 4
