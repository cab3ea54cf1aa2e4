"""mask_detector/video.py: FrameSource on streams that drop frames or whose reads raise."""

import threading
import time

import numpy as np


class ScriptedCapture:
    """Stands in for cv2.VideoCapture. Steps: an int is a frame of that value, a float that
    many seconds of failed reads, an exception is raised; after the last step reads fail."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.failing_until = None

    def __call__(self, target):  # used as the class: FrameSource calls cv2.VideoCapture(target)
        return self

    def isOpened(self):
        return True

    def get(self, prop):
        return 25.0

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
        values.extend(int(frame[0, 0, 0]) for frame in source)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "the frame source never ended"
    return values


def test_stream_that_drops_frames_waits_then_reports(monkeypatch):
    from mask_detector import video

    monkeypatch.setattr(video.cv2, "VideoCapture", ScriptedCapture([1, 2, 3, 0.6, 4, 5]))
    start = time.monotonic()
    with video.FrameSource("rtsp://camera.example/live", stream_timeout=1.5) as source:
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
