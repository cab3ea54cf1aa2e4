"""Shared helpers: run the real scripts in a subprocess, find the real data, drive a window on Xvfb.

The tests need the set-up step to have run (`make test` does it): the
detector files in face_detector/, the datasets in dataset/, the annotated
photos in evaluation/ and the sample photos in samples/.
"""

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from mask_detector import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
DATASET = ROOT / "dataset"
VOC_DEV = ROOT / "evaluation" / "facemask_voc_dev"
FRAMES_PER_PHOTO = 4


def ctrl_c_at_default():
    """A Popen preexec_fn: the child starts with Ctrl-C at its default, as a shell starts a command in the
    foreground. A child inherits an ignored SIGINT, and Python then leaves it ignored, so a test that
    stops a run with SIGINT must not depend on what the test process was left with."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def script_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # No test may reach the network: downloads go to a closed port and fail at once.
    env["HTTPS_PROXY"] = env["https_proxy"] = "http://127.0.0.1:9"
    env.pop("DISPLAY", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def user_env():
    """The environment of a user who set nothing: the scripts must keep the libraries quiet themselves."""
    env = script_env()
    for name in ("TF_CPP_MIN_LOG_LEVEL", "OPENCV_LOG_LEVEL", "QT_LOGGING_RULES"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def small_disk(folder, size="1m", read_only=False):
    """A real, tiny file system (tmpfs) mounted at ``folder``: it fills up, or refuses every write.

    Mounting needs root, as in CI; a root user ignores file permissions, so
    only a read-only mount really refuses writes.
    """
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs and needs root (as in CI)")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def run_script(script, *args, timeout=600, env=None, python=sys.executable, cwd=ROOT):
    """Run one of the project's scripts with the given arguments; return the CompletedProcess."""
    command = [python, str(ROOT / script), *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, env=env or script_env(), capture_output=True, text=True, timeout=timeout
    )


def run_module(module, *args, timeout=300, env=None):
    """Run ``python -m module`` from the project root; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT, env=env or script_env(), capture_output=True, text=True, timeout=timeout,
    )


def match_to_truth(boxes, truth_boxes, least_iou=0.3):
    """For each true box, the index of the detected box that overlaps it most (IoU >= least_iou), or -1.

    A loose IoU, because detectors and annotators frame a face differently
    (forehead, chin, ears); this asks whether a face was found, not how tightly.
    """
    from mask_detector.boxes import iou_matrix

    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.full(len(truth_boxes), -1)
    overlaps = iou_matrix(boxes, truth_boxes)
    best = overlaps.argmax(axis=0)
    return np.where(overlaps.max(axis=0) >= least_iou, best, -1)


def require(path):
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: run the set-up step (`make setup`) first")
    return Path(path)


@pytest.fixture(scope="session")
def samples():
    paths = sorted(require(SAMPLES).glob("*.jpg"))
    assert paths, "no sample photos"
    return paths


@pytest.fixture(scope="session")
def default_model():
    return require(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def voc_dev():
    return require(VOC_DEV)


def run_all(runs, parallel=2):
    """Run {name: (script, *args)} two at a time; return {name: CompletedProcess}.

    For runs that only fail: each spends seconds importing TensorFlow, so they share the wait.
    """
    with ThreadPoolExecutor(parallel) as pool:
        results = pool.map(lambda args: run_script(*args, timeout=300), runs.values())
        return dict(zip(runs, results))


def assert_one_line_error(result, *fragments, status=1):
    """Exit ``status``, no traceback, and exactly one `error:` line, the last one, holding ``fragments``."""
    stderr = result.stderr
    assert result.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == errors[0]
    for fragment in fragments:
        assert fragment in errors[0]
    return errors[0]


def read_records(path):
    return {Path(r["image"]).name: r for r in map(json.loads, Path(path).read_text(encoding="utf-8").splitlines())}


def mutate(data, rng):
    """Damage image bytes the way disks and networks do: bit flips, truncation, inserted or overwritten junk."""
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 20)):
            data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        del data[rng.integers(1, len(data)):]
    elif kind == 2:
        at = rng.integers(len(data))
        data[at:at] = rng.bytes(int(rng.integers(1, 500)))
    else:
        at = rng.integers(len(data))
        junk = rng.bytes(int(rng.integers(1, 200)))
        data[at:at + len(junk)] = junk
    return bytes(data)


def make_clip(photos, path, size=(640, 480), fps=10, frames_per_photo=FRAMES_PER_PHOTO):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for photo in photos:
        frame = cv2.resize(cv2.imread(str(photo)), size)
        for _ in range(frames_per_photo):
            writer.write(frame)
    writer.release()
    return path


def count_video_frames(path):
    """How many frames a video file really holds, by decoding them all."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.isOpened() and capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.fixture(scope="session")
def model_runs(samples, default_model, tmp_path_factory):
    """detect_mask_image.py with each broken or unsuitable model file (and one unwritable --output)."""
    import keras

    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(3)
    (folder / "random.h5").write_bytes(rng.bytes(20000))
    real = default_model.read_bytes()
    (folder / "truncated.h5").write_bytes(real[: len(real) // 2])
    with zipfile.ZipFile(folder / "junk.keras", "w") as archive:
        archive.writestr("config.json", rng.bytes(300))
        archive.writestr("model.weights.h5", rng.bytes(3000))

    def save(name, input_shape, classes, layer=None):
        inputs = keras.Input(input_shape)
        x = layer(inputs) if layer else inputs
        outputs = keras.layers.Dense(classes, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
        keras.Model(inputs, outputs).save(folder / name)

    save("grey_input.keras", (64, 64, 1), 2)
    save("four_classes.keras", (64, 64, 3), 4)
    # A Lambda layer is Python code inside the file; this one leaves a mark whenever it runs.
    marker = folder / "code ran"
    touch = eval(f"lambda t: t * float(__import__('pathlib').Path({str(marker)!r}).touch() is None)")
    save("lambda.keras", (64, 64, 3), 2, keras.layers.Lambda(touch))
    marker.unlink()
    keras.models.load_model(folder / "lambda.keras", safe_mode=False)  # without safe mode ...
    assert marker.exists()  # ... loading the file runs its code
    marker.unlink()
    (folder / "a file").write_text("")

    image = samples[0]
    runs = {
        name: ("detect_mask_image.py", "--image", image, "--no-display", "--json", "-", "--model", folder / name)
        for name in ("missing.h5", "random.h5", "truncated.h5", "junk.keras", "grey_input.keras",
                     "four_classes.keras", "lambda.keras")
    }
    runs["unwritable output"] = (
        "detect_mask_image.py", "--image", image, "--no-display", "--output", folder / "a file" / "out.jpg"
    )
    results = run_all(runs)
    results["marker"] = marker
    return results


@pytest.fixture(scope="session")
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


def close_like_a_window_manager(display_name, window):
    """Send WM_DELETE_WINDOW, what a window manager sends when the user clicks the close button.

    (xdotool windowclose destroys the X window behind Qt's back: Qt never notices
    and keeps drawing, so it does not stand for a user closing the window.)
    """

    class ClientMessage(ctypes.Structure):
        _fields_ = [
            ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
            ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
            ("format", ctypes.c_int), ("data", ctypes.c_long * 5),
        ]

    class Event(ctypes.Union):
        _fields_ = [("client", ClientMessage), ("padding", ctypes.c_long * 24)]

    library = ctypes.util.find_library("X11")
    assert library, "libX11 is needed to close a window"
    x11 = ctypes.CDLL(library)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(Event)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = x11.XOpenDisplay(display_name.encode())
    assert connection, f"cannot open display {display_name}"
    event = Event()
    event.client.type = 33  # ClientMessage
    event.client.window = window
    event.client.message_type = x11.XInternAtom(connection, b"WM_PROTOCOLS", 0)
    event.client.format = 32
    event.client.data[0] = x11.XInternAtom(connection, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(connection, window, 0, 0, ctypes.byref(event))
    x11.XFlush(connection)
    x11.XCloseDisplay(connection)


def close_window_when_shown(process, display_name, timeout=120):
    """Wait for the script's window, then close it as a user would until the script ends."""
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is needed for the window tests (apt-get install xdotool)")
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--name", "Face mask detector"],
            env={**os.environ, "DISPLAY": display_name}, capture_output=True, text=True,
        ).stdout.split()
        if found:
            time.sleep(1)  # let it show a few frames
            for _ in range(10):
                close_like_a_window_manager(display_name, int(found[0]))
                try:
                    return process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
            break
        time.sleep(0.2)
    process.kill()
    pytest.fail("the window never appeared or did not close")


class _ServedInBackground:
    """A server on a thread of its own, from `with` to its end: subclasses set _server and _thread."""

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class MjpegServer(_ServedInBackground):
    """A real MJPEG stream over HTTP on 127.0.0.1, as many IP cameras serve one.

    ``connections`` says what each connection, in turn, gets: a number of
    frames of ``image`` at ``fps`` (then the connection is closed: a drop), or
    "silent" (accepted, then nothing is ever sent), or "stalled" (one frame,
    then nothing: FFmpeg opens it when its open timeout ends, and reads no
    frame). Connections past the list are refused with 503. Use as a context
    manager; ``url`` is the address, ``times`` the monotonic time of each request.
    """

    def __init__(self, image, connections, fps=25, user=None, password=None):
        import http.server
        import threading

        ok, encoded = cv2.imencode(".jpg", image)
        assert ok
        jpeg, plan, served, times = encoded.tobytes(), list(connections), [], []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if not plan:
                    self.send_error(503)
                    return
                step = plan.pop(0)
                served.append(step)
                times.append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                if step == "stalled":
                    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                    self.wfile.write(part + jpeg + b"\r\n")
                    self.wfile.flush()
                if step in ("silent", "stalled"):
                    time.sleep(3600)
                for _ in range(step):
                    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                    try:
                        self.wfile.write(part + jpeg + b"\r\n")
                    except OSError:
                        return
                    time.sleep(1 / fps)

            def log_message(self, *args):
                pass

        self.served, self.times = served, times
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        credentials = f"{user}:{password}@" if user else ""
        self.url = f"http://{credentials}127.0.0.1:{self._server.server_address[1]}/camera.mjpg"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)


class FileServer(_ServedInBackground):
    """A real HTTP server on 127.0.0.1 serving the files of ``folder``, as a plain web server does.

    With ``ranges`` it answers Range requests (bytes=START- and START-END) as
    web servers do; without, it sends every file whole, as Python's own
    (http.server) does. ``requests`` holds each request's path; ``url(name)``
    is a file's address. Use as a context manager.
    """

    def __init__(self, folder, ranges=True):
        import functools
        import http.server
        import threading

        requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")) if ranges else None
                if not asked:
                    super().do_GET()
                    return
                data = (Path(folder) / self.path.lstrip("/")).read_bytes()
                first, last = int(asked[1]), min(int(asked[2] or len(data) - 1), len(data) - 1)
                self.send_response(206)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
                self.send_header("Content-Length", str(last + 1 - first))
                self.end_headers()
                try:
                    self.wfile.write(data[first:last + 1])
                except OSError:
                    pass  # the reader hung up, as FFmpeg does when it seeks

            def log_message(self, *args):
                pass

        self.requests = requests
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name):
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

