"""One service for many cameras: each in a process of its own, watched, restarted, reported.

The supervisor (the main process) starts one process per camera (or one Ray
actor: ray_service.py), and keeps going whatever a camera does: a camera
that crashes, hangs or loses its stream is stopped if need be and started
again, after a pause that doubles from 1 s up to a minute, back to 1 s once
it has run for a minute. Each camera publishes to the MQTT broker itself;
it tells the supervisor its state every second and each event, which the
supervisor writes to --events, to --stats once a minute, and serves on
/metrics. The supervisor counts a camera's alerts itself, from the events it
writes, and its restarts: those two go on across the camera's restarts
whatever the camera managed to send before it stopped.
"""

import contextlib
import dataclasses
import math
import multiprocessing
import queue
import signal
import sys
import threading
import time

from mask_detector.errors import Terminated, UserError
from mask_detector.files import JsonLines
from mask_detector.labels import VIOLATIONS

HEARTBEAT_SECONDS = 1.0
# A camera that sends no heartbeat this long, or reads frames it does not process, is taken as hung.
HANG_SECONDS = 60.0
FIRST_PAUSE, LONGEST_PAUSE, STEADY_SECONDS = 1.0, 60.0, 60.0
# Seconds after an alert during which the camera's alert sensor is on.
ALERT_HOLD_SECONDS = 30.0
# The classifier latency histogram's buckets, seconds (a LiteRT call takes some 2-10 ms on a laptop core).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
COUNTED = ("mask", *VIOLATIONS, "not_judged")
# At the end, seconds a broker that is away gets to come back and take the messages waiting for it.
FLUSH_SECONDS = 10.0


@dataclasses.dataclass
class CameraState:
    """What a camera reports: the state message's fields, and the counters behind the metrics."""

    camera: str
    stream: str = "starting"  # starting, up, down, ended
    fps: float = 0.0
    people_in_view: int = 0
    people_without_mask_in_view: int = 0
    people: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(COUNTED, 0))  # totals by label
    alerts: int = 0
    frames: int = 0
    dropped: int = 0  # frames dropped to keep to max_fps, or replaced by newer ones before being taken
    reconnects: int = 0
    restarts: int = 0
    mqtt_dropped: int = 0
    last_alert: float = -math.inf  # time.time() of the last alert
    latency: list = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    read_frames: int = 0  # frames the reader took from the source (a hang shows as these moving, frames not)

    def message(self, now=None):
        """The state message (MQTT, Home Assistant)."""
        now = time.time() if now is None else now
        judged = sum(self.people[label] for label in ("mask", *VIOLATIONS))
        compliance = self.people["mask"] / judged if judged else None
        return {
            "camera": self.camera, "time": round(now, 3), "stream": self.stream, "fps": round(self.fps, 2),
            "people_in_view": self.people_in_view, "people_without_mask_in_view": self.people_without_mask_in_view,
            "people": sum(self.people.values()), **{f"people_{label}": n for label, n in self.people.items()},
            "compliance": None if compliance is None else round(compliance, 4),
            "compliance_percent": None if compliance is None else round(100 * compliance, 1),
            "alerts": self.alerts, "alert": "ON" if now - self.last_alert < ALERT_HOLD_SECONDS else "OFF",
            "frames": self.frames, "dropped": self.dropped, "received": self.read_frames, "reconnects": self.reconnects,
            "restarts": self.restarts, "mqtt_dropped": self.mqtt_dropped,
        }

    def count_event(self, event):
        """An event's part in the totals: an alert adds one, and is the last alert from its time."""
        if event["event"] == "alert":
            self.alerts += 1
            self.last_alert = event["at"]

    def changed_from(self, other):
        """Whether a state message would say something new (beyond time, fps and counters of frames)."""
        if other is None:
            return True
        mine, theirs = self.message(0), other.message(0)
        quiet = ("time", "fps", "frames", "dropped", "received", "mqtt_dropped")
        return any(mine[key] != theirs[key] for key in mine if key not in quiet)


def pause_before_restart(ran_seconds, pause):
    """(the pause before a stopped camera starts again, the pause after that): doubling, back to the first
    once the camera ran steadily."""
    pause = FIRST_PAUSE if ran_seconds >= STEADY_SECONDS else pause
    return pause, min(pause * 2, LONGEST_PAUSE)


def snapshot_of(state):
    """A copy of a CameraState that later changes to it leave alone (it is queued, or pickled, as it is now)."""
    return dataclasses.replace(state, people=dict(state.people), latency=list(state.latency))


class StatePublishing:
    """A camera's state to MQTT: every ``every`` seconds, and at once when it says something new."""

    def __init__(self, publisher, every):
        self.publisher, self.every = publisher, every
        self._published, self._at = None, -math.inf

    def offer(self, state):
        if state.changed_from(self._published) or time.monotonic() - self._at >= self.every:
            self.publisher.state(state.message())
            # A copy: the state offered may be changed in place later (the supervisor counts alerts so),
            # and must still compare with what was sent.
            self._published, self._at = snapshot_of(state), time.monotonic()


class _EventSink:
    """The events of a camera's run: to the supervisor and to MQTT, with the camera's name."""

    def __init__(self, camera, messages, publisher, state):
        self.camera, self.messages, self.publisher, self.state = camera, messages, publisher, state
        self.state_due = False

    def write(self, event):
        # "at", the wall clock: "time" counts from the camera's start, and a camera started again starts
        # again from 0 with the same track ids, so two of its events could otherwise read the same.
        event = {"camera": self.camera, "at": round(time.time(), 3)} | event
        self.messages.put(("event", self.camera, event))
        if self.publisher:
            self.publisher.event(event)
        # The camera's own count, for the state it publishes itself (on Ray); the supervisor keeps its own.
        self.state.count_event(event)
        # The state goes to the supervisor as soon as the frame is counted, not at the next heartbeat: a
        # camera killed in between would carry its totals on short of this event's person.
        self.state_due = True


def run_camera(settings, messages, carried, publisher=None, state_every=10.0):
    """A camera's whole run, in its own process (or Ray actor): the source, the pipeline, the reports.

    ``messages`` takes its states and events (a queue); ``carried`` is the
    CameraState it had before it was started again: its totals go on from
    there. ``publisher`` (mqtt.MqttPublisher), if given, gets them too.
    Returns when the source ends; raises UserError when it cannot start or its stream is lost.
    """
    from mask_detector.live import new_live_run
    from mask_detector.pipeline import load_pipeline
    from mask_detector.video import FrameSource

    state = dataclasses.replace(snapshot_of(carried), stream="starting", fps=0.0, people_in_view=0,
                                people_without_mask_in_view=0)
    publishing = StatePublishing(publisher, state_every) if publisher else None
    stop = threading.Event()
    source = None

    def report():
        """Every second to the supervisor (and the publisher, which sends what is due)."""
        while not stop.wait(HEARTBEAT_SECONDS):
            if source is not None:
                state.read_frames = carried.read_frames + source.frames_read
                state.reconnects = carried.reconnects + source.reconnections
                state.stream = "up" if source.receiving else "down"
            if publisher:
                state.mqtt_dropped = carried.mqtt_dropped + publisher.dropped
            snapshot = snapshot_of(state)
            messages.put(("state", settings.camera, snapshot))
            if publishing:
                publishing.offer(snapshot)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        pipeline = load_pipeline(settings.pipeline)
        with FrameSource(settings.source, settings.timeout, settings.reconnect_for) as source:
            sink = _EventSink(settings.camera, messages, publisher, state)
            run = new_live_run(settings, pipeline, sink, source.fps)
            base = dict(carried.people)

            def count_frames(counts):
                state.frames = carried.frames + counts.frames
                state.dropped = carried.dropped + counts.dropped + source.dropped
                state.read_frames = carried.read_frames + source.frames_read

            def watch(counts, faces):
                count_frames(counts)
                people = run.people.counts()
                for label in COUNTED:
                    state.people[label] = base[label] + people[f"people_{label}"]
                state.fps = counts.recent_fps
                in_view = [f for f in faces if run.tracker.tracks[f.track_id].frames >= run.people.person_frames]
                state.people_in_view = len(in_view)
                state.people_without_mask_in_view = sum(f.label in VIOLATIONS and f.judged for f in in_view)
                for seconds in run.classifier_seconds:
                    bucket = next((i for i, edge in enumerate(LATENCY_BUCKETS) if seconds <= edge), -1)
                    state.latency[bucket] += 1
                    state.latency_sum += seconds
                run.classifier_seconds.clear()
                if sink.state_due:
                    sink.state_due = False
                    messages.put(("state", settings.camera, snapshot_of(state)))

            counts = run.run(source, watch=watch)
            state.stream, state.people_in_view, state.people_without_mask_in_view = "ended", 0, 0
            count_frames(counts)
            if counts.interruption:
                raise counts.interruption
            if source.error:
                state.stream = "down"
                raise UserError(source.error)
    finally:
        stop.set()
        reporter.join(timeout=5)
        messages.put(("state", settings.camera, state))
        if publisher:
            publisher.state(state.message())


def _camera_process(settings, messages, carried):
    """A camera process's main: Ctrl-C is the supervisor's to handle; SIGTERM ends the run cleanly."""
    from mask_detector.errors import stop_on_sigterm

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_on_sigterm()
    try:
        run_camera(settings, messages, carried)
    except UserError as error:
        messages.put(("error", settings.camera, str(error)))
        sys.exit(3)
    except Terminated:
        sys.exit(0)


@dataclasses.dataclass
class _Camera:
    settings: object
    process: object = None
    started: float = 0.0
    pause: float = FIRST_PAUSE  # before its next start, unless it ran steadily first
    due: float = 0.0  # monotonic time of the next start
    done: bool = False  # its source ended: not started again
    state: CameraState = None
    heard: float = 0.0  # monotonic time of its last message
    up_seconds: float = 0.0  # seconds its stream was up, since the last line of --stats
    heard_state: float = 0.0  # monotonic time of its last state
    moving: tuple = (0, 0, 0.0)  # (read frames, frames, monotonic time the frames last moved)


class Supervisor:
    """Runs every camera of a site.SiteSettings, restarts those that stop, writes and serves what they report."""

    def __init__(self, site, out=sys.stdout):
        self.site = site
        self.out = out
        self.context = multiprocessing.get_context("spawn")  # a forked TensorFlow or OpenCV can hang
        self.messages = self.context.Queue()
        self.cameras = {c.camera: _Camera(c, state=CameraState(c.camera)) for c in site.cameras}
        self.events = None
        self.stats = None
        # The cameras' MQTT connections live here, in the process that outlives the cameras' own: a
        # camera that crashes loses none of the messages waiting for the broker.
        self.publishers = {}
        self.publishing = {}
        self._stats_at = time.monotonic()
        self._stats_base = {}

    def say(self, text):
        print(text, file=self.out, flush=True)

    def run(self):
        """Until every camera's source has ended, or Ctrl-C / SIGTERM; the exit status."""
        from mask_detector.metrics import serve_metrics

        with contextlib.ExitStack() as stack:
            if self.site.events:
                self.events = stack.enter_context(JsonLines(self.site.events, streaming=True))
            if self.site.stats:
                self.stats = stack.enter_context(JsonLines(self.site.stats, streaming=True))
            if self.site.metrics_port:
                stack.callback(serve_metrics(self, self.site.metrics_port).shutdown)
            self._connect()
            stack.callback(self._disconnect)
            self.say(f"watching {len(self.cameras)} camera{'s' * (len(self.cameras) != 1)}: "
                     f"{', '.join(self.cameras)}" + (f"; metrics on :{self.site.metrics_port}/metrics"
                                                     if self.site.metrics_port else ""))
            try:
                while not all(camera.done for camera in self.cameras.values()):
                    self._start_due()
                    self._read_messages(0.2)
                    self._check()
                    self._write_stats()
            except KeyboardInterrupt as interruption:
                self._stop_all()
                self._read_messages(0.5)
                self._write_stats(force=True)
                self.say("stopped: " + self.summary())
                return 143 if isinstance(interruption, Terminated) else 130
            self._read_messages(0.5)
            self._write_stats(force=True)
            self.say("all sources ended: " + self.summary())
        return 0

    def summary(self):
        return "; ".join(f"{name} {sum(c.state.people.values())} people, {c.state.alerts} alerts, "
                         f"{c.state.restarts} restarts" for name, c in self.cameras.items())

    def _start_due(self):
        now = time.monotonic()
        for name, camera in self.cameras.items():
            if camera.done or camera.process is not None or now < camera.due:
                continue
            carried = snapshot_of(camera.state)
            camera.process = self.context.Process(
                target=_camera_process, name=f"camera {name}", daemon=True,
                args=(camera.settings, self.messages, carried),
            )
            camera.process.start()
            self.say(f"camera {name}: started (process {camera.process.pid})")
            camera.started = camera.heard = now
            camera.moving = (camera.state.read_frames, camera.state.frames, now)

    def _read_messages(self, wait):
        deadline = time.monotonic() + wait
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            self._handle(*message)

    def _handle(self, kind, name, body):
        """A camera's message: its state (every second), an event, or the error that stopped it."""
        camera = self.cameras[name]
        camera.heard = time.monotonic()
        if kind == "state":
            # The supervisor's own counts stay: a state may have been taken before the camera's latest alert,
            # and a camera killed before sending the one that counts it would lose that alert for good.
            body.restarts, body.alerts, body.last_alert = (camera.state.restarts, camera.state.alerts,
                                                           camera.state.last_alert)
            if camera.state.stream == "up":
                camera.up_seconds += time.monotonic() - camera.heard_state
            camera.heard_state = time.monotonic()
            camera.state = body
            if (body.read_frames, body.frames) != camera.moving[:2]:
                camera.moving = (body.read_frames, body.frames, time.monotonic())
            self._publish_state(name)
        elif kind == "event":
            # Counted before it is written: whoever reads it in the events file finds it on /metrics too.
            camera.state.count_event(body)
            if self.events:
                self.events.write(body)
            if name in self.publishers:
                self.publishers[name].event(body)
            self._publish_state(name)  # an alert changed it: its count, the alert sensor on
        elif kind == "error":
            self.say(f"camera {name}: {body}")

    def _publish_state(self, name):
        """The camera's state to MQTT, if the site has a broker, when it is due or says something new."""
        if name in self.publishing:
            state = self.cameras[name].state
            state.mqtt_dropped = self.publishers[name].dropped
            self.publishing[name].offer(state)

    def _check(self):
        now = time.monotonic()
        for name, camera in self.cameras.items():
            process = camera.process
            if process is None:
                continue
            if process.is_alive():
                read, frames, since = camera.moving
                stalled = camera.state.read_frames > read and camera.state.frames == frames
                if now - camera.heard > HANG_SECONDS or (stalled and now - since > HANG_SECONDS):
                    self.say(f"camera {name}: no sign of work for {HANG_SECONDS:g} s; stopping it to start again")
                    process.kill()
                continue
            process.join()
            camera.process = None
            if process.exitcode == 0:
                camera.done = True
                continue
            pause, camera.pause = pause_before_restart(now - camera.started, camera.pause)
            camera.due = now + pause
            camera.state.restarts += 1
            camera.state.stream = "down"
            self.say(f"camera {name}: stopped (exit status {process.exitcode}); starting it again in {pause:g} s")

    def _connect(self):
        """An MQTT connection per camera (its own will, its own queue), when the site has a broker."""
        from mask_detector.mqtt import MqttPublisher

        if self.site.mqtt:
            for name in self.cameras:
                self.publishers[name] = MqttPublisher(self.site.mqtt, name)
                self.publishing[name] = StatePublishing(self.publishers[name], self.site.state_every)

    def _disconnect(self):
        """The last state of each camera, then offline: the service has stopped.

        A broker that is away gets some seconds to come back and take what waits for it; what it does not
        take is counted as dropped, and said.
        """
        deadline = time.monotonic() + FLUSH_SECONDS
        while time.monotonic() < deadline and any(p.waiting() for p in self.publishers.values()):
            time.sleep(0.1)
        for name, publisher in self.publishers.items():
            publisher.state(self.cameras[name].state.message())
            publisher.close()
            if publisher.dropped:
                self.say(f"camera {name}: {publisher.dropped} MQTT messages dropped: the broker was away")

    def _stop_all(self):
        for camera in self.cameras.values():
            if camera.process is not None and camera.process.is_alive():
                camera.process.terminate()
        deadline = time.monotonic() + 10
        for camera in self.cameras.values():
            if camera.process is not None:
                camera.process.join(max(0.1, deadline - time.monotonic()))
                if camera.process.is_alive():
                    camera.process.kill()
                    camera.process.join()

    def _write_stats(self, force=False):
        """Per camera, a line a minute (stats_every): people who came by label, compliance, fps, time streaming."""
        now = time.monotonic()
        if not self.stats or (not force and now - self._stats_at < self.site.stats_every):
            return
        for name, camera in self.cameras.items():
            before = self._stats_base.get(name, dict.fromkeys(COUNTED, 0))
            came = {label: camera.state.people[label] - before[label] for label in COUNTED}
            judged = sum(came[label] for label in ("mask", *VIOLATIONS))
            self.stats.write({
                "camera": name, "time": round(time.time(), 3), "seconds": round(now - self._stats_at, 1),
                **{f"people_{label}": n for label, n in came.items()},
                "compliance": round(came["mask"] / judged, 4) if judged else None,
                "fps": round(camera.state.fps, 2), "stream": camera.state.stream,
                "uptime": round(min(1.0, camera.up_seconds / max(now - self._stats_at, 1e-9)), 4),
                "restarts": camera.state.restarts,
            })
            camera.up_seconds = 0.0
            self._stats_base[name] = dict(camera.state.people)
        self._stats_at = now
