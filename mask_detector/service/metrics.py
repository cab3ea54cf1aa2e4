"""Prometheus metrics of a service (--metrics-port), on /metrics: each camera's state as the supervisor
keeps it (state.CameraState): frames over all its runs, people and alerts from the events written to --events.

    mask_detector_frames_total{camera}                  frames processed
    mask_detector_frames_received_total{camera}         frames received from the source
    mask_detector_frames_dropped_total{camera}          frames dropped to keep up (never queued)
    mask_detector_fps{camera}                           frames per second of late
    mask_detector_people_in_view{camera}                people in view now
    mask_detector_people_total{camera,label}            people seen, by final label (mask, no_mask, incorrect, not_judged)
    mask_detector_alerts_total{camera}                  alerts raised, each an alert event
    mask_detector_stream_up{camera}                     1 while frames come, else 0
    mask_detector_reconnects_total{camera}              times the stream was opened again
    mask_detector_restarts_total{camera}                times the camera's process was started again
    mask_detector_mqtt_dropped_total{camera}            MQTT messages dropped while the broker was away
    mask_detector_classifier_seconds{camera}            histogram of the classifier's time per call
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

    def __init__(self, states):
        self.states = states  # camera name -> CameraState, kept up to date by the supervisor

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


def serve_metrics(states, port, host="0.0.0.0"):
    """Serve /metrics of ``states`` (camera name -> CameraState) on ``port`` on a thread; the server
    (shutdown() stops it)."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(states))
    handler = type("Handler", (MetricsHandler,), {"registry": registry,
                                                  "log_message": lambda self, *args: None})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise UserError(f"cannot serve metrics on port {port}: {error.strerror or error}") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
