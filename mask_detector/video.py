"""Frame sources for live detection (cameras, video files, streams) and the video writer (H.264 through PyAV).

Frames are read on a background thread so that decoding overlaps with
detection, and so that a source that hangs never blocks Ctrl-C. A finite
source (a video file, or a URL to one: whatever announces a frame count)
gives every frame, as fast as they are taken, once, to its end; a live one
(a camera, a live stream) keeps only the newest frame, so a slow frame never
makes the picture lag behind the world. A live source that stops sending is
reopened, with pauses growing from 0.5 to 8 s before every reopening, for
``reconnect_for`` seconds before the run gives up.
"""

import math
import os
import queue
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from mask_detector.errors import UserError, first_line
from mask_detector.files import partial_path

END = object()  # put on the queue when the source has no more frames
# How long opening a source or waiting for its next frame may take, by default.
TIMEOUT_SECONDS = 10.0
# How long a dropped camera or stream is tried again, by default.
RECONNECT_SECONDS = 30.0
# A live source that sent frames this long since it was (re)opened is working again: pauses start afresh.
STEADY_SECONDS = 8.0


def describe_source(source):
    """('camera', index), ('file', path) or ('stream', url) for a --source value."""
    text = str(source)
    if text.isdigit():
        return "camera", int(text)
    if "://" in text:
        return "stream", text
    if Path(text).is_file():
        return "file", text
    raise UserError(
        f"--source {redact(text)!r} is neither a camera index, an existing video file nor a stream URL"
    )


def camera_name(source):
    """A short name for a --source, for file names: `camera0`, a video file's stem, a stream's host."""
    kind, target = describe_source(source)
    if kind == "camera":
        return f"camera{target}"
    if kind == "file":
        return Path(target).stem
    return urlsplit(target).hostname or "stream"


# Query parameters that carry a secret in the URLs cameras take (?user=admin&pwd=...).
SECRET_PARAMETERS = re.compile(r"([?&;](?:password|passwd|pass|pwd|token|key|secret|auth|signature)=)[^&;#\s]*",
                               re.IGNORECASE)


def redact(text):
    """A source name fit for messages: the password of a URL (user:password@host, a password that holds @
    too) and the secret parameters of its query become ***."""
    # The user part ends at the last @ before the path: a password may hold @ itself.
    text = re.sub(r"(://[^/@:\s]*):[^/\s]*@", r"\1:***@", str(text))
    return SECRET_PARAMETERS.sub(r"\1***", text)


@dataclass
class Frame:
    image: np.ndarray  # BGR
    index: int  # position in the source, counting frames the reader dropped
    time: float  # seconds: position in a file, time since the start for live sources


class FrameSource:
    """Iterate over the Frames of a camera, file or stream; use as a context manager."""

    def __init__(self, source, timeout=TIMEOUT_SECONDS, reconnect_for=RECONNECT_SECONDS):
        self.kind, self._target = describe_source(source)
        self.name = redact(source)
        self.timeout = timeout
        self.reconnect_for = reconnect_for
        self.error = None
        self.warning = None  # said at the end: a finite source that ended early (see _check_length)
        self.reconnections = 0
        self.frames_received = 0  # frames taken from the source
        self.dropped = 0  # frames of a live source replaced by a newer one before the run took them
        self.read_seconds = 0.0  # CPU time the reader thread spent taking frames (decoding): a profile's first stage
        self._last_read = time.monotonic()
        # Told once opened: whether the source announces its length (a file, or a URL to one), and how many frames.
        self.finite = self.kind == "file"
        self.announced_frames = 0
        self._capture = None
        self._start = time.monotonic()
        # The pause before the next reopening: it doubles up to 8 s, and is back to 0.5 s once a connection
        # has lasted STEADY_SECONDS with frames, so a stream that gives a frame and stalls is not asked ever faster.
        self._pause = 0.5
        self._connected_at = time.monotonic()
        # A finite source keeps every frame (bounded queue, the reader waits); a live one keeps the newest.
        self._frames = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, daemon=True)
        self._thread.start()
        # Opening happens on the reader thread; waiting here in short steps keeps Ctrl-C working.
        while not self._opened.wait(0.1):
            pass
        if self._capture is None:
            self.close()
            what = {"camera": "camera", "file": "video file", "stream": "stream"}[self.kind]
            # "within" only for a stream that took the whole timeout, not one refused at once.
            waited = self.kind == "stream" and time.monotonic() - self._start >= 0.9 * timeout
            raise UserError(f"cannot open {what} {self.name}" + (f" within {timeout:g} s" if waited else ""))
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0

    def _open(self):
        """A new opened capture, or None; bounded by the timeout where the backend allows it."""
        timeout_ms = int(self.timeout * 1000)
        if self.kind == "stream":
            capture = cv2.VideoCapture(
                self._target, cv2.CAP_FFMPEG,
                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms],
            )
        else:
            capture = cv2.VideoCapture(self._target)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _read_loop(self):
        try:
            self._capture = self._open()
        except Exception:  # a backend that raises while opening: the same as not opening
            self._capture = None
        if self._capture is not None:
            # A URL to a video file (http://, file://) announces its frames as a file does: it is read
            # to its end, once, every frame, never reopened; a camera or live stream announces none.
            frames = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
            if self.kind != "camera" and 0 < frames < 2**40:
                self.finite, self.announced_frames = True, int(frames)
            fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        self._opened.set()
        if self._capture is None:
            return
        index = 0
        failing_since = None
        seconds = -1.0
        while not self._stop.is_set():
            try:
                started = time.thread_time()
                ok, image = self._capture.read()
                self.read_seconds += time.thread_time() - started
            except Exception as error:  # whatever happens, END must follow, or the reader waits forever
                self.error = f"cannot read from {self.name}: {first_line(error)}"
                break
            if ok and image is not None:
                failing_since = None
                if time.monotonic() - self._connected_at >= STEADY_SECONDS:
                    self._pause = 0.5
                seconds = self._position(index, fps, seconds) if self.finite else time.monotonic() - self._start
                self.frames_received += 1
                self._last_read = time.monotonic()
                self._put(Frame(image, index, seconds))
                index += 1
                continue
            if self.finite:
                self._check_length(index)
                break
            # Live sources may drop frames for a while: wait, then reopen, then give up.
            failing_since = failing_since or time.monotonic()
            quiet = time.monotonic() - failing_since
            if quiet > self.timeout and not self._reconnect(failing_since):
                self.error = (
                    f"{self.name} sent no frame for {time.monotonic() - failing_since:.1f} s"
                    + (f" ({self.reconnections} reconnection attempts)" if self.reconnections else "")
                )
                break
            time.sleep(0.01)
        self._put(END, keep_newest=False)

    def _position(self, index, fps, previous):
        """Seconds into a finite source of the frame just read: its own timestamp.

        Index over the average frame rate is off by a second and more in a
        video whose frame rate varies (phones record so); it stands in only
        where the backend gives no timestamp that moves forward.
        """
        seconds = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if seconds > previous and seconds >= 0:
            return seconds
        return index / fps if fps > 0 else max(previous, 0.0)

    def _check_length(self, frames):
        """At a finite source's end: a warning when it gave fewer frames than its container announced."""
        # The count is exact in mp4 and mkv headers, an estimate from the duration in some other
        # containers: a frame or two, or 2 %, short is no sign of damage.
        if self._stop.is_set():
            return  # stopped by the run (--max-frames, q, Ctrl-C), not by the file
        missing = self.announced_frames - frames
        if missing > max(2, 0.02 * self.announced_frames):
            self.warning = (f"{self.name} ended after {frames} of the {self.announced_frames} frames its "
                            f"container announces: the file is truncated or damaged")

    def _reconnect(self, failing_since):
        """Reopen until it opens or ``reconnect_for`` runs out; True if reopened.

        Every reopening waits first, and the wait grows from one to the next
        (also when the source opened but sent nothing, or one frame and no
        more) until a connection has worked for STEADY_SECONDS, so a server
        that accepts and then fails is never asked in a tight loop.
        """
        deadline = failing_since + self.timeout + self.reconnect_for
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._capture.release()
            self._stop.wait(min(self._pause, max(0.0, deadline - time.monotonic())))
            self._pause = min(self._pause * 2, 8.0)
            if self._stop.is_set() or time.monotonic() >= deadline:
                break
            self.reconnections += 1
            capture = self._open()
            if capture is not None:
                self._capture = capture
                self._connected_at = time.monotonic()
                return True
        return False

    @property
    def receiving(self):
        """Whether frames are coming: one came within the timeout."""
        return self._thread.is_alive() and time.monotonic() - self._last_read <= self.timeout

    def _put(self, item, keep_newest=True):
        while not self.finite and keep_newest:
            try:
                self._frames.get_nowait()  # a live source: drop the frames nobody took yet
                self.dropped += 1
            except queue.Empty:
                break
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self.finite:
                    try:
                        self._frames.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass

    def __iter__(self):
        while True:
            # A timeout on get keeps the main thread able to take Ctrl-C.
            try:
                item = self._frames.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._frames.empty():
                    return
                continue
            if item is END:
                return
            yield item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        if self._capture is not None:
            self._capture.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# x264's preset for .mp4 and .mov: the one whose cost is nearest mp4v's, the codec it replaces, since the
# annotated video is encoded on the live loop's thread. Measured on 300 frames of 640x480 panned across the
# sample photos, one thread, on a 2-core machine: per frame mp4v (OpenCV) 2.1 ms, ultrafast 2.5 ms, superfast
# 4.4 ms, veryfast 6.0 ms; 12 s of video came to 2988, 3189, 1107 and 493 kB. ultrafast's files are the size
# mp4v's were (7 % larger), and its Constrained Baseline profile (no B-frames, no CABAC) every browser decodes.
H264_PRESET = "ultrafast"
# One encoder thread: a second one saved time only while the other core was idle (2.0 ms a frame against
# 2.9); with both cores busy, as beside the live loop, it finished later (median 4.2 ms against 3.9) and spent
# more CPU (3.8 ms against 3.5), and each thread holds frames of its own.
H264_THREADS = 1

_pyav_lock = threading.Lock()
_pyav = []  # once looked for: [PyAV, or None where it or its libx264 is missing]


def _pyav_with_x264():
    """PyAV, where it is installed with libx264, else None; the first time it is not, one warning says so."""
    with _pyav_lock:  # evidence clips open their writers on threads of their own
        if not _pyav:
            try:
                import av

                av.codec.Codec("libx264", "w")
                _pyav.append(av)
            except (ImportError, ValueError) as error:  # PyAV raises UnknownCodecError, a ValueError
                print(f"warning: no H.264 encoder ({first_line(error)}): .mp4 and .mov videos are written as "
                      f"MPEG-4 Part 2 (mp4v), which most web browsers do not play", file=sys.stderr)
                _pyav.append(None)
        return _pyav[0]


class _H264Writer:
    """Writes BGR frames into an .mp4 or .mov as H.264 through PyAV, one output frame each, as cv2.VideoWriter
    does: it reports no errors, and a file it failed to write comes out short of frames.

    The file's moov box goes before its frames (faststart), so a browser plays it while it downloads; yuv420p,
    since browsers decode no other. Odd widths and heights, which yuv420p cannot hold, gain a row or column
    repeating the edge.
    """

    def __init__(self, av, path, fps, size):
        self._av = av
        rate = Fraction(fps).limit_denominator(1001)  # 29.97 fps is 30000/1001
        self._time_base = 1 / rate
        self._container = av.open(str(path), "w", format=path.suffix[1:].lower(),
                                  options={"movflags": "+faststart"})
        try:
            width, height = size
            self._stream = self._container.add_stream("libx264", rate=rate, width=width + width % 2,
                                                      height=height + height % 2)
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"preset": H264_PRESET}
            self._stream.codec_context.time_base = self._time_base
            self._stream.codec_context.thread_count = H264_THREADS
        except Exception:
            self._container.close()
            raise
        self._frames = 0
        self._last = None  # (image, its VideoFrame): a repeated image is converted once
        self.failed = False

    def write(self, image):
        if self.failed:
            return
        try:
            if self._last is None or self._last[0] is not image:
                height, width = image.shape[:2]
                even = cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE) \
                    if height % 2 or width % 2 else image
                # OpenCV's conversion is BT.601 at limited range, as FFmpeg's, and a tenth faster.
                frame = self._av.VideoFrame.from_ndarray(cv2.cvtColor(even, cv2.COLOR_BGR2YUV_I420),
                                                         format="yuv420p")
                frame.time_base = self._time_base
                self._last = (image, frame)
            frame = self._last[1]
            frame.pts = self._frames
            self._container.mux(self._stream.encode(frame))
            self._frames += 1
        except (self._av.FFmpegError, OSError):
            self.failed = True

    def release(self):
        try:
            if not self.failed:
                self._container.mux(self._stream.encode(None))  # the frames the encoder still holds
        except (self._av.FFmpegError, OSError):
            self.failed = True
        try:
            self._container.close()  # writes the moov box, then moves it before the frames
        except (self._av.FFmpegError, OSError):
            self.failed = True


class VideoOutput:
    """Writes annotated frames to a video file at the source's pace; opened at the first frame's size.

    Frames are written at ``fps``, each at the output frame of its time (the
    source's clock) and repeated until the next one's, so a recording plays
    at the speed of the world even when frames were dropped or the source's
    frame rate varies; when several fall on one output frame (a faster
    stretch), the last of them is written. The file is written under a
    temporary name and renamed when it is complete and checked. An .mp4 or
    .mov is H.264, which web browsers play (see CODECS).
    """

    # By suffix, the codecs tried in turn: H.264 (h264, through PyAV's libx264), which browsers play, else
    # MPEG-4 Part 2 (mp4v, through OpenCV) where PyAV or its libx264 is missing; Motion JPEG (MJPG, OpenCV).
    CODECS = {".mp4": ("h264", "mp4v"), ".avi": ("MJPG",), ".mkv": ("MJPG",), ".mov": ("h264", "mp4v")}

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
        self._written = 0
        self._first_seconds = None
        self._pending = None  # (image, output frame number): the last frame given, not yet written
        self.codec = None  # the codec written with (see CODECS), once the first frame is
        self._temporary = partial_path(self.path)

    def write(self, image, seconds=None):
        """Write ``image``; with ``seconds`` (the frame's time), at the output frame of that time.

        The output frames before it that no frame filled show the frame before
        (what the source showed then); a frame whose output frame is taken
        already is left out.
        """
        if self._writer is None:
            height, width = image.shape[:2]
            for codec in self.CODECS[self.path.suffix.lower()]:
                self._writer = self._open_writer(codec, (width, height))
                if self._writer is not None:
                    self.codec = codec
                    break
                self._temporary.unlink(missing_ok=True)
            else:
                raise UserError(f"cannot write video {self.path}")
            self._first_seconds = seconds
        place = self._written + (self._pending is not None) if seconds is None else \
            math.floor((seconds - self._first_seconds) * self.fps + 0.5)
        # A frame is held until the next one comes: the last frame of an output frame's time wins it.
        if self._pending is not None and place > self._pending[1]:
            self._flush(place)
        if self._pending is None or place >= self._pending[1]:
            self._pending = (image, max(place, self._written))

    def _open_writer(self, codec, size):
        """A writer of ``codec`` (see CODECS) into the temporary file, or None where it cannot be opened."""
        if codec == "h264":
            av = _pyav_with_x264()
            if av is None:
                return None
            try:
                return _H264Writer(av, self._temporary, self.fps, size)
            except (av.FFmpegError, OSError):
                return None
        writer = cv2.VideoWriter(str(self._temporary), cv2.VideoWriter_fourcc(*codec), self.fps, size)
        if writer.isOpened():
            return writer
        writer.release()
        return None

    def _flush(self, until):
        """Write the held frame at its place, and again at every place before ``until`` (no frame came for them)."""
        image, place = self._pending
        self._pending = None
        for _ in range(max(1, until - place)):
            self._writer.write(image)
            self._written += 1

    def close(self):
        """Finish the file and put it in place; a file that did not come out whole is removed, with the reason."""
        if self._writer is None:
            return
        if self._pending is not None:
            self._flush(self._pending[1] + 1)
        self._writer.release()
        self._writer = None
        check = cv2.VideoCapture(str(self._temporary))
        frames = int(check.get(cv2.CAP_PROP_FRAME_COUNT)) if check.isOpened() else 0
        check.release()
        if frames < self._written:
            self._temporary.unlink(missing_ok=True)
            # The writer reports no errors; a file that holds fewer frames than it was given
            # tells one happened, and a full disk is the usual reason.
            if shutil.disk_usage(self.path.parent).free < 10 * 1024 * 1024:
                raise UserError(f"no space left on device writing {self.path}")
            raise UserError(f"cannot write video {self.path}: the file came out incomplete")
        os.replace(self._temporary, self.path)
