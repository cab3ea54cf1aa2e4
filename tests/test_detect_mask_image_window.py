"""detect_mask_image.py in a window on a real X server, and with a display that does not answer."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from support.image_script import IMAGE_KEYS
from support.scripts import ROOT, assert_one_line_error, read_records, run_script, script_env, user_env
from support.xserver import PATIENCE, close_window_when_shown, find_window, press_key, watch


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


def test_display_that_does_not_answer(samples, tmp_path):
    """Once: Qt aborted the process (exit 134) and left an empty JSON file."""
    number = next(n for n in range(99, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    result = run_script(
        "detect_mask_image.py", "--image", samples[0], "--json", tmp_path / "results.jsonl",
        env=script_env(DISPLAY=f":{number}"),
    )
    assert_one_line_error(result, f"cannot open a window on display :{number}; run with --no-display")
    assert not (tmp_path / "results.jsonl").exists()


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
