"""One camera's run, in a process of its own or a Ray actor: the source, the pipeline, and what it reports.

A run sends three kinds of message to whoever supervises it, each a tuple
(kind, camera, body): ("event", camera, event) at once for each alert and
each person who left view, ("report", camera, CameraReport) every second and
at the end, and ("error", camera, text) when it cannot go on. It counts
nothing across its runs: the supervisor does, from these messages.
"""

import signal
import sys
import threading
import time

from mask_detector.errors import Terminated, UserError
from mask_detector.service.state import CameraReport

HEARTBEAT_SECONDS = 1.0


class _EventSink:
    """The events of a camera's run, sent with the camera's name and the wall-clock time."""

    def __init__(self, camera, send):
        self.camera, self.send = camera, send

    def write(self, event):
        # "at", the wall clock: "time" counts from the camera's start, and a camera started again starts
        # again from 0 with the same track ids, so two of its events could otherwise read the same.
        self.send(("event", self.camera, {"camera": self.camera, "at": round(time.time(), 3)} | event))


def run_camera(settings, send, stopping=None):
    """A camera's whole run (live.LiveSettings ``settings``), its messages to ``send`` (a callable).

    Returns when the source ends; raises UserError when it cannot start or its stream is lost, and
    Terminated, after the run is wound up (people left, clips written), once ``stopping`` (an Event) is set.
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

            counts = run.run(source, watch=watch)
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


def camera_process(settings, messages):
    """A local camera process's main: Ctrl-C is the supervisor's to handle; SIGTERM ends the run cleanly."""
    from mask_detector.errors import stop_on_sigterm

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_on_sigterm()
    try:
        run_camera(settings, messages.put)
    except UserError as error:
        messages.put(("error", settings.camera, str(error)))
        sys.exit(3)
    except Terminated:
        sys.exit(0)
