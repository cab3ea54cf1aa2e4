"""Frame sources for live detection: cameras, video files and streams.

Frames are read on a background thread so that decoding overlaps with
detection. A video file gives every frame, as fast as they are taken; a
camera or stream keeps only the newest frame, so a slow frame never makes
the picture lag behind the world.
"""

import queue
import threading
import time
from pathlib import Path

import cv2

from mask_detector.errors import UserError, first_line

END = object()  # put on the queue when the source has no more frames


def describe_source(source):
    """('camera', index), ('file', path) or ('stream', url) for a --source value."""
    text = str(source)
    if text.isdigit():
        return "camera", int(text)
    if "://" in text:
        return "stream", text
    if Path(text).is_file():
        return "file", text
    raise UserError(f"--source {text!r} is neither a camera index, an existing video file nor a stream URL")


class FrameSource:
    """Iterate over BGR frames of a camera, file or stream; use as a context manager."""

    def __init__(self, source, stream_timeout=5.0):
        self.kind, target = describe_source(source)
        self.name = str(source)
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            self._capture.release()
            what = {"camera": "camera", "file": "video file", "stream": "stream"}[self.kind]
            raise UserError(f"cannot open {what} {source}")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        self.stream_timeout = stream_timeout
        self.error = None
        # A file keeps every frame (bounded queue, the reader waits); live sources keep the newest.
        self._frames = queue.Queue(maxsize=8 if self.kind == "file" else 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, daemon=True)
        self._thread.start()

    def _read_loop(self):
        failing_since = None
        while not self._stop.is_set():
            try:
                ok, frame = self._capture.read()
            except Exception as error:  # whatever happens, END must follow, or the reader waits forever
                self.error = f"cannot read from {self.name}: {first_line(error)}"
                break
            if ok and frame is not None:
                failing_since = None
                self._put(frame)
                continue
            if self.kind == "file":
                break
            # Live sources may drop frames for a while; give up only after a quiet spell.
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > self.stream_timeout:
                self.error = f"{self.name} sent no frame for {self.stream_timeout:g} s"
                break
            time.sleep(0.01)
        self._put(END, keep_newest=False)

    def _put(self, item, keep_newest=True):
        if self.kind != "file" and keep_newest:
            try:
                self._frames.get_nowait()  # drop the frame nobody took yet
            except queue.Empty:
                pass
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.kind != "file":
                    try:
                        self._frames.get_nowait()
                    except queue.Empty:
                        pass

    def __iter__(self):
        while True:
            item = self._frames.get()
            if item is END:
                return
            yield item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self._capture.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoOutput:
    """Writes annotated frames to a video file; opened lazily at the first frame's size."""

    CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".mov": "mp4v"}

    def __init__(self, path, fps):
        self.path = Path(path)
        if self.path.suffix.lower() not in self.CODECS:
            raise UserError(f"--output must end in {', '.join(self.CODECS)}; got {self.path.name}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot write {self.path}: {error.strerror or error}") from None
        self.fps = fps if 1 <= fps <= 240 else 25.0
        self._writer = None

    def write(self, frame):
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*self.CODECS[self.path.suffix.lower()])
            height, width = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise UserError(f"cannot write video {self.path}")
        self._writer.write(frame)

    def close(self):
        if self._writer is not None:
            self._writer.release()
