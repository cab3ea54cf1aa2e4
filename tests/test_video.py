"""mask_detector/video.py: FrameSource on streams that drop frames or whose reads raise; VideoOutput's pace."""

import threading
import time

import cv2
import numpy as np
import pytest

from support.media import count_video_frames


class ScriptedCapture:
    """Stands in for cv2.VideoCapture. Steps: an int is a frame of that value, a float that
    many seconds of failed reads, an exception is raised; after the last step reads fail."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.failing_until = None

    def __call__(self, target, *options):  # used as the class: FrameSource calls cv2.VideoCapture(target, ...)
        return self

    def isOpened(self):
        return True

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else -1.0  # a live stream: frame rate, no frame count

    def read(self):
        time.sleep(0.005)
        while self.steps:
            step = self.steps[0]
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, float):
                self.failing_until = self.failing_until or time.monotonic() + step
                if time.monotonic() < self.failing_until:
                    return False, None
                self.failing_until = None
                self.steps.pop(0)
                continue
            self.steps.pop(0)
            return True, np.full((2, 2, 3), step, np.uint8)
        return False, None

    def release(self):
        pass


def frames_of(source, timeout=20):
    """Every frame value the source gives; fails if it never ends."""
    values = []

    def collect():
        values.extend(int(frame.image[0, 0, 0]) for frame in source)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "the frame source never ended"
    return values


def test_stream_that_drops_frames_waits_then_reports(monkeypatch):
    from mask_detector import video

    monkeypatch.setattr(video.cv2, "VideoCapture", ScriptedCapture([1, 2, 3, 0.6, 4, 5]))
    start = time.monotonic()
    with video.FrameSource("rtsp://camera.example/live", timeout=1.5, reconnect_for=0) as source:
        values = frames_of(source)
        assert values[-1] == 5  # frames after a short gap still come through
        assert time.monotonic() - start >= 0.6 + 1.5  # it waited the whole timeout before giving up
        assert source.error == "rtsp://camera.example/live sent no frame for 1.5 s"


def test_source_whose_read_raises_ends_with_an_error(monkeypatch):
    from mask_detector import video

    monkeypatch.setattr(video.cv2, "VideoCapture", ScriptedCapture([1, 2, RuntimeError("device unplugged")]))
    with video.FrameSource("rtsp://camera.example/live") as source:
        assert frames_of(source)[-1] == 2
        assert source.error == "cannot read from rtsp://camera.example/live: device unplugged"


def test_frames_of_a_file_carry_their_index_and_time(tmp_path):
    from mask_detector.video import FrameSource

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48))
    for value in range(10):
        writer.write(np.full((48, 64, 3), value * 20, np.uint8))
    writer.release()
    with FrameSource(path) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(10))
    assert [f.time for f in frames] == pytest.approx([i / 20 for i in range(10)])


def test_video_output_keeps_the_pace_of_the_source(tmp_path):
    """Frames processed at 0, 0.5 and 1.0 s of a 10 fps source play back over 1.1 s, not 0.3 s."""
    from mask_detector.video import VideoOutput

    output = VideoOutput(tmp_path / "paced.avi", fps=10)
    for seconds in (0.0, 0.5, 1.0):
        output.write(np.zeros((48, 64, 3), np.uint8), seconds)
    output.close()
    assert count_video_frames(tmp_path / "paced.avi") == 11
    assert [p.name for p in tmp_path.iterdir()] == ["paced.avi"]  # no temporary file left


def test_a_password_in_a_stream_url_is_never_shown():
    from mask_detector.video import redact

    assert redact("rtsp://admin:hunter2@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert redact("http://camera.local/mjpg") == "http://camera.local/mjpg"
    # A password that holds @, and credentials in the query string, are hidden whole.
    assert redact("rtsp://admin:Secret@2024@10.0.0.5/live") == "rtsp://admin:***@10.0.0.5/live"
    assert redact("http://cam.local/video.cgi?user=admin&pwd=Secret&res=hd") == (
        "http://cam.local/video.cgi?user=admin&pwd=***&res=hd")
    assert redact("http://cam.local/snap?Password=x1;channel=1") == "http://cam.local/snap?Password=***;channel=1"
    assert redact("http://cam.local:8080/live@main") == "http://cam.local:8080/live@main"
