"""One service for many cameras: the supervisor runs them, counts what they report, and writes and serves it.

The cameras run in processes of their own or as Ray actors (runners.py),
which start them again when they stop. The supervisor owns every count: a
camera's people and alerts from the events it writes to --events (so the
events file, the state message, the statistics and /metrics agree at every
moment), its restarts from the runner, and its frames from each run's
reports over the runs before. It publishes each camera's events and state
to MQTT, from this process that outlives the cameras, writes --stats once a
minute, serves /metrics and, with ``web``, keeps every event and statistics
line in SQLite (event_store.py) and serves the web page (web.py).
"""

import contextlib
import copy
import sys
import time
from pathlib import Path

from mask_detector.counts import PeopleCounts
from mask_detector.files import JsonLines
from mask_detector.service.notify import Channel
from mask_detector.service.state import CameraState, StatePublishing

# At the end, seconds a broker that is away gets to come back and take the messages waiting for it.
FLUSH_SECONDS = 10.0
# Seconds between two removals of the database's rows past a camera's keep_days (as its files go).
FORGET_EVERY_SECONDS = 3600.0


class Supervisor:
    """Runs every camera of a config.SiteSettings with ``cameras`` (a runners.LocalCameras or RayCameras)."""

    def __init__(self, site, cameras, say):
        self.site, self.cameras, self.say = site, cameras, say
        self._settings = {settings.camera: settings for settings in site.cameras}
        self.states = {settings.camera: CameraState(settings.camera, zones={
            name: PeopleCounts() for name in settings.zones.counted}) for settings in site.cameras}
        self.events = self.stats = self.store = None
        self._forgot_at = -float("inf")
        self.publishers, self.publishing = {}, {}
        self.channels = []  # notify.Channel of each [[notify]] table
        self._reported = {name: 0.0 for name in self.states}  # monotonic time of each camera's last report
        self._up_seconds = dict.fromkeys(self.states, 0.0)  # seconds its stream was up since the last stats
        self._stats_at = time.monotonic()
        self._stats_people = {name: copy.deepcopy((state.people, state.zones)) for name, state in self.states.items()}

    def run(self):
        """Until every camera's source has ended, or Ctrl-C / SIGTERM; the exit status."""
        from mask_detector.errors import Terminated

        with self.outputs():
            self.say(f"watching {len(self.states)} camera{'s' * (len(self.states) != 1)}: {', '.join(self.states)}"
                     + (f"; metrics on {self.site.metrics_host}:{self.site.metrics_port}/metrics"
                        if self.site.metrics_port else ""))
            try:
                while not self.cameras.ended:
                    for message in self.cameras.poll(0.2):
                        self.handle(*message)
                    self._write_stats()
                    self._forget_when_due()
            except KeyboardInterrupt as interruption:
                for message in self.cameras.stop():
                    self.handle(*message)
                self._write_stats(force=True)
                self.say("stopped: " + self.summary())
                return 143 if isinstance(interruption, Terminated) else 130
            self._write_stats(force=True)
            self.say("all sources ended: " + self.summary())
        return 0

    @contextlib.contextmanager
    def outputs(self):
        """--events, --stats, /metrics and the MQTT connections, open while the cameras run; closed whole."""
        from mask_detector.service.metrics import serve_metrics

        with contextlib.ExitStack() as stack:
            # The port first: one that is taken stops the service before any file is created.
            if self.site.metrics_port:
                server = serve_metrics(self.states, self.site.metrics_port, self.site.metrics_host, self.build(),
                                       self.channels)
                stack.callback(server.shutdown)
            web = None
            if self.site.web:
                from mask_detector.service.event_store import EventStore
                from mask_detector.service.web import Web

                web = Web(self.site, self)  # the port first, as for metrics
                self.store = EventStore(self.site.database)
                stack.callback(self.store.close)
                stack.callback(web.stop)  # before the database closes
            if self.site.events:
                self.events = stack.enter_context(JsonLines(self.site.events, streaming=True))
            if self.site.stats:
                self.stats = stack.enter_context(JsonLines(self.site.stats, streaming=True))
            self._connect()
            stack.callback(self._disconnect)
            self.channels += [Channel(settings, self.say) for settings in self.site.notify]
            stack.callback(self._stop_notifying)
            if web:
                web.start(self.store)
                self.say(f"web page on {web.address}/")
            yield self

    def build(self):
        """{(version, model sha256)} of what the cameras run: the package's version and each model file's hash."""
        from mask_detector import installed_version
        from mask_detector.files import sha256_of

        models = {settings.pipeline.model_path for settings in self.site.cameras}
        return {(installed_version() or "unknown", sha256_of(path)) for path in models if path.is_file()}

    def summary(self):
        return "; ".join(f"{name} {state.people.total} people, {state.alerts} alerts, {state.restarts} restarts"
                         for name, state in self.states.items())

    def handle(self, kind, name, body):
        """A message of a camera's (camera.py) or of its runner's (runners.py)."""
        state = self.states[name]
        if kind == "report":
            now = time.monotonic()
            if state.stream == "up":
                self._up_seconds[name] += now - self._reported[name]
            self._reported[name] = now
            if body.frames > state.report.frames:
                state.last_frame_at = time.time()
            state.report = body
        elif kind == "event":
            # Counted before it is written: whoever reads it in the events file finds it on /metrics too.
            state.count_event(body)
            if self.events:
                self.events.write(body)
            if self.store:
                self.store.add_event(body)
            if name in self.publishers:
                self.publishers[name].event(body)
                self._publish_snapshot(name, body)
            if body["event"] == "alert":
                for channel in self.channels:
                    if channel.wants(name):
                        channel.offer(body)
        elif kind == "restart":
            state.restarts += 1
            state.run_ended("down")
        elif kind == "ended":
            state.run_ended("ended")
        elif kind == "error":
            self.say(f"camera {name}: {body}")
        self._publish_state(name)

    def _publish_state(self, name):
        """The camera's state to MQTT, if the site has a broker, when it is due or says something new."""
        if name in self.publishing:
            self.states[name].mqtt_dropped = self.publishers[name].dropped
            self.publishing[name].offer(self.states[name])
            self.publishers[name].available(self.states[name].available)

    def _connect(self):
        """An MQTT connection per camera (its own will, its own queue), when the site has a broker."""
        from mask_detector.service.mqtt import MqttPublisher

        if self.site.mqtt:
            for name in self.states:
                self.publishers[name] = MqttPublisher(self.site.mqtt, name, state_every=self.site.state_every,
                                                      zones=self.states[name].zones,
                                                      snapshots=bool(self._settings[name].snapshots))
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
            publisher.state(self.states[name].message())
            publisher.close()
            if publisher.dropped:
                self.say(f"camera {name}: {publisher.dropped} MQTT messages dropped: the broker was away")

    def _publish_snapshot(self, name, event):
        """An alert's snapshot to MQTT, for Home Assistant's image entity of the last alert."""
        if event["event"] == "alert" and event.get("snapshot"):
            try:
                self.publishers[name].snapshot(Path(event["snapshot"]).read_bytes())
            except OSError as error:
                self.say(f"camera {name}: cannot read the snapshot {event['snapshot']}: {error.strerror or error}")

    def _stop_notifying(self):
        """What waits to be sent gets some seconds to go; what was dropped or failed is said."""
        deadline = time.monotonic() + FLUSH_SECONDS
        while time.monotonic() < deadline and any(channel.waiting() for channel in self.channels):
            time.sleep(0.05)
        for channel in self.channels:  # all at once: the tries under way end together, within one timeout
            channel.close()
        for channel in self.channels:
            channel.stop(0)
            if channel.dropped or channel.failed:
                self.say(f"notifications by {channel.kind} to {channel.name}: {channel.sent} sent, "
                         f"{channel.failed} failed, {channel.dropped} dropped")

    def _write_stats(self, force=False):
        """Per camera, a line a minute (stats_every): people who came by label, compliance, fps, time streaming."""
        now = time.monotonic()
        if not (self.stats or self.store) or (not force and now - self._stats_at < self.site.stats_every):
            return
        seconds = now - self._stats_at
        for name, state in self.states.items():
            people_before, zones_before = self._stats_people[name]
            # Per count zone too, the people who came in it, as the camera's line counts them.
            zones = {zone: _came(counts - zones_before.get(zone, PeopleCounts()))
                     for zone, counts in state.zones.items()}
            line = {
                "camera": name, "time": round(time.time(), 3), "seconds": round(seconds, 1),
                **_came(state.people - people_before), **({"zones": zones} if zones else {}),
                "fps": round(state.report.fps, 2), "stream": state.stream,
                "uptime": round(min(1.0, self._up_seconds[name] / max(seconds, 1e-9)), 4),
                "restarts": state.restarts,
            }
            if self.stats:
                self.stats.write(line)
            if self.store:
                self.store.add_stats(line)
            self._up_seconds[name] = 0.0
            self._stats_people[name] = copy.deepcopy((state.people, state.zones))
        self._stats_at = now


    def _forget_when_due(self):
        """The database's rows past each camera's keep_days removed, at the start and once an hour."""
        now = time.monotonic()
        if not self.store or now - self._forgot_at < FORGET_EVERY_SECONDS:
            return
        self._forgot_at = now
        for name, settings in self._settings.items():
            if settings.keep_days is not None:
                self.store.forget_before(name, time.time() - settings.keep_days * 86400)


def _came(counts):
    """A statistics line's figures of the people who came in its period: by label, and compliance."""
    return ({key: n for key, n in counts.to_json().items() if key != "people"}
            | {"compliance": counts.compliance_json()["compliance"]})


def run_service(site, ray=None, out=sys.stdout):
    """Run ``site``'s cameras, as local processes or as Ray actors at address ``ray``; the exit status."""
    from mask_detector.errors import stop_on_sigterm
    from mask_detector.service.runners import LocalCameras, RayCameras

    def say(text):
        print(text, file=out, flush=True)

    picture_fps = site.web_fps if site.web else None  # live pictures for the web page only
    if not ray:
        return Supervisor(site, LocalCameras(site.cameras, say, picture_fps), say).run()
    from mask_detector.ray_cluster import connect_ray, require_ray

    require_ray(ray)
    connect_ray(ray)
    stop_on_sigterm()  # ray.init put its own SIGTERM handler, which dies with a stack dump, in place of ours
    import ray as ray_module

    cameras = None
    try:
        cameras = RayCameras(site.cameras, say, picture_fps)
        return Supervisor(site, cameras, say).run()
    finally:
        if cameras:
            cameras.stop()  # before shutting Ray down, which would kill the actors loudly
        ray_module.shutdown()
