"""One camera's run, in a process of its own or a Ray actor: the source, the pipeline, and what it reports.

A run sends three kinds of message to whoever supervises it, each a tuple
(kind, camera, body): ("event", camera, event) at once for each alert and
each person who left view, ("report", camera, CameraReport) every second and
at the end, and ("error", camera, text) when it cannot go on. It counts
nothing across its runs: the supervisor does, from these messages. While
someone watches the web page's live view, it also hands over the drawn
frame as JPEG (LivePicture): to a SharedPicture a local camera shares with
the supervisor, or to its Ray actor, which gives the last one to the driver
with its messages (runners.py).
"""

import signal
import sys
import threading
import time

from mask_detector.errors import Terminated, UserError
from mask_detector.service.state import CameraReport

HEARTBEAT_SECONDS = 1.0
# The live picture's width at most, and its JPEG quality: enough to see who is there on a phone or a desktop,
# some 30-50 kB a picture.
PICTURE_WIDTH, PICTURE_QUALITY = 800, 80
# A SharedPicture's room: a picture larger than this (a detailed 800-pixel frame is some 150 kB) is not shown.
MOST_PICTURE_BYTES = 1 << 20


class SharedPicture:
    """A local camera's last live picture, in memory its process shares with the supervisor's.

    Not a message: a picture is larger than a pipe takes at once, and a camera
    stopped while writing one would leave the supervisor's queue with a
    message cut short, which it would wait on for ever.
    """

    def __init__(self, context):
        self._buffer = context.Array("B", MOST_PICTURE_BYTES)  # its lock guards the three
        self._length = context.Value("i", 0, lock=False)
        self._at = context.Value("d", 0.0, lock=False)

    def put(self, jpeg):
        if len(jpeg) > MOST_PICTURE_BYTES:
            return
        with self._buffer.get_lock():
            memoryview(self._buffer.get_obj()).cast("B")[:len(jpeg)] = jpeg
            self._length.value, self._at.value = len(jpeg), time.time()

    def get(self):
        """(the last picture's JPEG bytes, or None; the time.time() it was put)."""
        with self._buffer.get_lock():
            length = self._length.value
            return (bytes(memoryview(self._buffer.get_obj()).cast("B")[:length]) if length else None), self._at.value


class LivePicture:
    """The drawn frame as JPEG for the web page's live view: made only while someone watches, ``fps`` a second,
    and handed to ``deliver`` (a callable taking the JPEG bytes).

    ``watched_until`` is a callable giving the time.time() until which someone watches (the supervisor moves it
    on while a live view is open).
    """

    def __init__(self, deliver, watched_until, fps):
        self.deliver, self.watched_until = deliver, watched_until
        self.interval = 1.0 / fps
        self._taken = -self.interval

    def wanted(self):
        return time.monotonic() - self._taken >= self.interval and self.watched_until() > time.time()

    def take(self, image):
        import cv2

        self._taken = time.monotonic()
        height, width = image.shape[:2]
        if width > PICTURE_WIDTH:
            image = cv2.resize(image, (PICTURE_WIDTH, round(height * PICTURE_WIDTH / width)),
                               interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, PICTURE_QUALITY])
        if ok:
            self.deliver(encoded.tobytes())


class _EventSink:
    """The events of a camera's run, sent with the camera's name and the wall-clock time."""

    def __init__(self, camera, send):
        self.camera, self.send = camera, send

    def write(self, event):
        # "at", the wall clock: "time" counts from the camera's start, and a camera started again starts
        # again from 0 with the same track ids, so two of its events could otherwise read the same.
        self.send(("event", self.camera, {"camera": self.camera, "at": round(time.time(), 3)} | event))


def run_camera(settings, send, stopping=None, watched_until=None, picture_fps=4.0, picture=None):
    """A camera's whole run (live.LiveSettings ``settings``), its messages to ``send`` (a callable).

    Returns when the source ends; raises UserError when it cannot start or its stream is lost, and
    Terminated, after the run is wound up (people left, clips written), once ``stopping`` (an Event) is set.
    With ``watched_until`` (see LivePicture), it makes live pictures, ``picture_fps`` a second at most, unless
    its privacy allows no picture, and puts them into ``picture`` (a SharedPicture, or anything with put(jpeg)).
    """
    from mask_detector.live import new_live_run
    from mask_detector.pipeline import load_pipeline
    from mask_detector.video import FrameSource

    report = CameraReport()
    stop = threading.Event()
    source = None

    def heard_from_source():
        if source is not None:
            report.frames_received = source.frames_received
            report.reconnects = source.reconnections
            report.stream = "up" if source.receiving else "down"

    def heartbeat():
        while not stop.wait(HEARTBEAT_SECONDS):
            heard_from_source()
            send(("report", settings.camera, _copy(report)))

    reporter = threading.Thread(target=heartbeat, daemon=True)
    reporter.start()
    try:
        pipeline = load_pipeline(settings.pipeline)
        with FrameSource(settings.source, settings.timeout, settings.reconnect_for) as source:
            run = new_live_run(settings, pipeline, _EventSink(settings.camera, send), source.fps)

            def watch(counts, faces):
                if stopping is not None and stopping.is_set():
                    raise Terminated()  # as SIGTERM does in a process of its own: the run winds up
                report.frames, report.dropped = counts.frames, counts.dropped + source.dropped
                report.fps = counts.recent_fps
                report.people_in_view, report.people_without_mask_in_view = run.view_counts(faces)
                for seconds in run.take_classifier_seconds():
                    report.count_latency(seconds)

            live = None
            if watched_until is not None and picture is not None and settings.privacy != "stats":
                live = LivePicture(picture.put, watched_until, picture_fps)
            counts = run.run(source, watch=watch, picture=live)
            report.frames, report.dropped = counts.frames, counts.dropped + source.dropped
            report.stream, report.people_in_view, report.people_without_mask_in_view = "ended", 0, 0
            if counts.interruption:
                raise counts.interruption
            if source.error:
                report.stream = "down"
                raise UserError(source.error)
    finally:
        stop.set()
        reporter.join(timeout=5)
        send(("report", settings.camera, report))


def _copy(report):
    """A report as it is now: the run goes on changing the one it keeps."""
    return CameraReport(**{**vars(report), "latency": list(report.latency)})


def camera_process(settings, messages, watched=None, picture_fps=4.0, picture=None, threads=None):
    """A local camera process's main: Ctrl-C is the supervisor's to handle; SIGTERM ends the run cleanly.

    ``watched``: a shared multiprocessing Value, the time.time() until which someone watches its live picture;
    ``picture``: the SharedPicture it draws it into; ``threads``: its share of the cores (parallel.use_threads).
    """
    from mask_detector.errors import stop_on_sigterm
    from mask_detector.parallel import use_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_on_sigterm()
    if threads:
        use_threads(threads)
    try:
        run_camera(settings, messages.put, watched_until=None if watched is None else (lambda: watched.value),
                   picture_fps=picture_fps, picture=picture)
    except UserError as error:
        messages.put(("error", settings.camera, str(error)))
        sys.exit(3)
    except Terminated:
        sys.exit(0)
