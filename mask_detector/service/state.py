"""A camera's state: what its run reports of itself, what the supervisor counts, and the state message.

A camera's run reports its frames, stream and people in view, counted from
the run's own start (CameraReport). The supervisor keeps the rest
(CameraState): the counters of the runs that ended before, the people and
alerts it counts from the events it writes, and the restarts it makes. No
count travels into a camera and back, so a camera that dies takes none with it.
"""

import copy
import dataclasses
import math
import time

from mask_detector.counts import PeopleCounts

# Seconds after an alert during which the camera's alert sensor is on.
ALERT_HOLD_SECONDS = 30.0
# The classifier latency histogram's buckets, seconds (a LiteRT call takes some 2-10 ms on a laptop core).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# The counters of a report, which go on across a camera's runs; the rest says how the run is now.
RUN_COUNTERS = ("frames", "dropped", "frames_received", "reconnects", "latency_sum")
# The state message's keys that change with every frame: a state that differs only in these is not news.
FRAME_KEYS = ("time", "fps", "frames", "dropped", "frames_received", "mqtt_dropped")


@dataclasses.dataclass
class CameraReport:
    """What a camera's run says of itself, every second: its counters count from the run's start."""

    stream: str = "starting"  # starting, up, down, ended
    fps: float = 0.0
    people_in_view: int = 0
    people_without_mask_in_view: int = 0
    frames: int = 0  # frames processed
    dropped: int = 0  # frames dropped to keep to max_fps, or replaced by newer ones before being taken
    frames_received: int = 0  # frames taken from the source (a hang shows as these moving, frames not)
    reconnects: int = 0
    latency: list = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def count_latency(self, seconds):
        """One classifier call of ``seconds`` into the latency histogram."""
        bucket = next((i for i, edge in enumerate(LATENCY_BUCKETS) if seconds <= edge), -1)
        self.latency[bucket] += 1
        self.latency_sum += seconds

    def after(self, earlier):
        """This report with the counters of ``earlier`` runs added to its own."""
        return dataclasses.replace(
            self, latency=[a + b for a, b in zip(earlier.latency, self.latency)],
            **{name: getattr(earlier, name) + getattr(self, name) for name in RUN_COUNTERS})


@dataclasses.dataclass
class CameraState:
    """A camera as the supervisor knows it; its ``message`` is the state published to MQTT."""

    camera: str
    report: CameraReport = dataclasses.field(default_factory=CameraReport)  # the current run's latest
    ended_runs: CameraReport = dataclasses.field(default_factory=CameraReport)  # their counters, summed
    people: PeopleCounts = dataclasses.field(default_factory=PeopleCounts)  # from the person events
    # Count zone -> PeopleCounts, from the person events' zones; the camera's count zones from zero.
    zones: dict = dataclasses.field(default_factory=dict)
    alerts: int = 0  # from the alert events
    last_alert: float = -math.inf  # time.time() of the last alert
    restarts: int = 0
    mqtt_dropped: int = 0
    last_frame_at: float | None = None  # time.time() of the first report that said more frames were processed

    @property
    def stream(self):
        """starting (the first run only, until its source opens), up, down or ended."""
        if self.report.stream == "starting" and self.restarts:
            return "down"  # a camera started again is down until frames come, not starting for ever
        return self.report.stream

    @property
    def available(self):
        """Whether the camera is there for Home Assistant: starting, or receiving frames."""
        return self.stream in ("starting", "up")

    @property
    def totals(self):
        """The current run's report with the counters of every run of the camera."""
        return self.report.after(self.ended_runs)

    def run_ended(self, stream):
        """The camera's run stopped (``stream``: "down" to be started again, "ended"): its counters are kept."""
        self.ended_runs = self.totals
        self.report = CameraReport(stream=stream)

    def count_event(self, event):
        """An event's part in the counts: an alert, and the last alert from its time; a person who left."""
        if event["event"] == "alert":
            self.alerts += 1
            self.last_alert = event["at"]
        elif event["event"] == "person":
            label = event["label"] if event["judged"] else None
            self.people.add(label)
            for zone in event.get("zones", ()):
                self.zones.setdefault(zone, PeopleCounts()).add(label)

    def message(self, now=None):
        """The state message (MQTT, Home Assistant)."""
        now = time.time() if now is None else now
        totals = self.totals
        zones = {name: counts.to_json() | counts.compliance_json() for name, counts in self.zones.items()}
        return {
            "camera": self.camera, "time": round(now, 3), "stream": self.stream, "fps": round(totals.fps, 2),
            "people_in_view": totals.people_in_view,
            "people_without_mask_in_view": totals.people_without_mask_in_view, **self.people.to_json(),
            **self.people.compliance_json(), **({"zones": zones} if zones else {}),
            "alerts": self.alerts, "alert": "ON" if now - self.last_alert < ALERT_HOLD_SECONDS else "OFF",
            "frames": totals.frames, "dropped": totals.dropped, "frames_received": totals.frames_received,
            "reconnects": totals.reconnects, "restarts": self.restarts, "mqtt_dropped": self.mqtt_dropped,
        }

    def changed_from(self, other):
        """Whether a state message would say something new (beyond time, fps and counters of frames)."""
        if other is None:
            return True
        mine, theirs = self.message(0), other.message(0)
        return any(mine[key] != theirs[key] for key in mine if key not in FRAME_KEYS)


class StatePublishing:
    """A camera's state to MQTT: every ``every`` seconds, and at once when it says something new."""

    def __init__(self, publisher, every):
        self.publisher, self.every = publisher, every
        self._published, self._at = None, -math.inf

    def offer(self, state):
        if state.changed_from(self._published) or time.monotonic() - self._at >= self.every:
            self.publisher.state(state.message())
            # A copy: the state offered changes in place later, and must still compare with what was sent.
            self._published, self._at = copy.deepcopy(state), time.monotonic()
