"""Prometheus metrics of a service (--metrics-port), on /metrics: each camera's state as the supervisor
keeps it (state.CameraState): frames over all its runs, people and alerts from the events written to --events.

    mask_detector_frames_total{camera}                  frames processed
    mask_detector_frames_received_total{camera}         frames received from the source
    mask_detector_frames_dropped_total{camera}          frames dropped to keep up (never queued)
    mask_detector_fps{camera}                           frames per second of late
    mask_detector_people_in_view{camera}                people in view now
    mask_detector_people_total{camera,label}            people seen, by final label (mask, no_mask, incorrect, not_judged)
    mask_detector_zone_people_total{camera,zone,label}  people seen in a count zone, by final label
    mask_detector_alerts_total{camera}                  alerts raised, each an alert event
    mask_detector_stream_up{camera}                     1 while frames come, else 0
    mask_detector_reconnects_total{camera}              times the stream was opened again
    mask_detector_restarts_total{camera}                times the camera's process was started again
    mask_detector_mqtt_dropped_total{camera}            MQTT messages dropped while the broker was away
    mask_detector_classifier_seconds{camera}            histogram of the classifier's time per call
    mask_detector_last_frame_timestamp_seconds{camera}  when a frame was last processed (Unix time)
    mask_detector_build_info{version,model_sha256}      1, for each model the cameras run
    mask_detector_notifications_total{channel,to,result} alerts sent, failed or dropped by each [[notify]]

/healthz on the same port answers 200 while the service runs.
"""

import threading
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import MetricsHandler

from mask_detector.errors import UserError
from mask_detector.service.state import LATENCY_BUCKETS

PREFIX = "mask_detector"


class ServiceCollector:
    """Reads the supervisor's CameraState of each camera at every scrape."""

    def __init__(self, states, build=(), channels=()):
        self.states = states  # camera name -> CameraState, kept up to date by the supervisor
        self.build = sorted(build)  # (version, model sha256) of what the cameras run
        self.channels = channels  # notify.Channel of each [[notify]] table

    def collect(self):
        states = list(self.states.values())

        def family(kind, name, text, value, labels=("camera",)):
            metric = kind(f"{PREFIX}_{name}", text, labels=list(labels))
            for state in states:
                metric.add_metric([state.camera], value(state))
            return metric

        yield family(CounterMetricFamily, "frames", "Frames processed", lambda s: s.totals.frames)
        yield family(CounterMetricFamily, "frames_received", "Frames received from the source",
                     lambda s: s.totals.frames_received)
        yield family(CounterMetricFamily, "frames_dropped", "Frames dropped to keep up", lambda s: s.totals.dropped)
        yield family(GaugeMetricFamily, "fps", "Frames per second of late", lambda s: s.report.fps)
        yield family(GaugeMetricFamily, "people_in_view", "People in view", lambda s: s.report.people_in_view)
        people = CounterMetricFamily(f"{PREFIX}_people", "People seen, by final label", labels=["camera", "label"])
        for state in states:
            for label, count in state.people.by_label().items():
                people.add_metric([state.camera, label], count)
        yield people
        zoned = CounterMetricFamily(f"{PREFIX}_zone_people", "People seen in a count zone, by final label",
                                    labels=["camera", "zone", "label"])
        for state in states:
            for zone, counts in state.zones.items():
                for label, count in counts.by_label().items():
                    zoned.add_metric([state.camera, zone, label], count)
        yield zoned
        yield family(CounterMetricFamily, "alerts", "Alerts raised", lambda s: s.alerts)
        yield family(GaugeMetricFamily, "stream_up", "1 while frames come", lambda s: float(s.stream == "up"))
        yield family(CounterMetricFamily, "reconnects", "Times the stream was opened again",
                     lambda s: s.totals.reconnects)
        yield family(CounterMetricFamily, "restarts", "Times the camera's process was started again",
                     lambda s: s.restarts)
        yield family(CounterMetricFamily, "mqtt_dropped", "MQTT messages dropped while the broker was away",
                     lambda s: s.mqtt_dropped)
        latency = HistogramMetricFamily(f"{PREFIX}_classifier_seconds", "Classifier time per call",
                                        labels=["camera"])
        for state in states:
            totals, running, buckets = state.totals, 0, []
            for edge, count in zip((*LATENCY_BUCKETS, float("inf")), totals.latency):
                running += count
                buckets.append((str(edge) if edge != float("inf") else "+Inf", running))
            latency.add_metric([state.camera], buckets, totals.latency_sum)
        yield latency
        yield from self._service(states)

    def _service(self, states):
        """The families of when frames came, what runs, and the notifications."""
        last_frame = GaugeMetricFamily(f"{PREFIX}_last_frame_timestamp_seconds",
                                       "When a frame was last processed, Unix time", labels=["camera"])
        for state in states:
            if state.last_frame_at is not None:  # no sample before the first frame: "never" is no time
                last_frame.add_metric([state.camera], state.last_frame_at)
        yield last_frame
        build = GaugeMetricFamily(f"{PREFIX}_build_info", "The version and the models the cameras run",
                                  labels=["version", "model_sha256"])
        for version, sha256 in self.build:
            build.add_metric([version, sha256], 1)
        yield build
        notifications = CounterMetricFamily(f"{PREFIX}_notifications", "Alerts sent, failed or dropped, by channel",
                                            labels=["channel", "to", "result"])
        for channel in self.channels:
            for result in ("sent", "failed", "dropped"):
                notifications.add_metric([channel.kind, channel.name, result], getattr(channel, result))
        yield notifications


class _Handler(MetricsHandler):
    """/metrics as Prometheus' handler serves it, and /healthz: 200 while the service runs."""

    def do_GET(self):
        if self.path.split("?")[0] == "/healthz":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"ok\n")
        else:
            super().do_GET()

    def log_message(self, *args):
        pass  # a scrape every few seconds is no news


def serve_metrics(states, port, host="127.0.0.1", build=(), channels=()):
    """Serve /metrics of ``states`` (camera name -> CameraState) and /healthz on ``host``:``port`` on a thread;
    the server (shutdown() stops it). ``build``: {(version, model sha256)} for mask_detector_build_info;
    ``channels``: the notify.Channels whose counts to serve."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(states, build, channels))
    handler = type("Handler", (_Handler,), {"registry": registry})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise UserError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
