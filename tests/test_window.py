"""The window path for real: both scripts open an OpenCV window on a virtual X screen (Xvfb)."""

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from conftest import ROOT, script_env
from test_video import make_clip


@pytest.fixture(scope="module")
def display():
    """Start Xvfb on a free display number and return it, e.g. ':3'."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed for the window tests (apt-get install xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    assert number.isdigit(), "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def screenshot(display):
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def shows_annotated_picture(shot):
    """A photo is on screen (many colours) with at least one green or red label box."""
    pixels = shot.reshape(-1, 3).astype(int)
    green = np.all(np.abs(pixels - (0, 200, 0)) < 30, axis=1).sum()
    red = np.all(np.abs(pixels - (230, 0, 0)) < 30, axis=1).sum()
    return shot.std() > 20 and len(np.unique(pixels[::7], axis=0)) > 500 and green + red > 200


def watch(process, display, timeout=120):
    """Take screenshots until one shows the annotated picture or the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        shot = screenshot(display)
        if shows_annotated_picture(shot):
            return shot
        time.sleep(0.1)
    return None


def test_image_window_shows_the_annotated_photo(display, samples, default_model, tmp_path):
    process = subprocess.Popen(
        [os.sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(samples[0]), "--wait", "8000"],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shot = watch(process, display)
    stdout, stderr = process.communicate(timeout=120)
    assert shot is not None, f"no annotated window seen; stderr: {stderr[-2000:]}"
    assert process.returncode == 0, stderr
    assert "faces" in stdout
    from PIL import Image

    Image.fromarray(shot).save(tmp_path / "image_window.png")


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
