"""mask_detector/service/metrics.py: each camera's state on /metrics, scraped over HTTP."""

import urllib.request

import pytest

from mask_detector.counts import PeopleCounts
from mask_detector.errors import UserError
from mask_detector.service.metrics import serve_metrics
from mask_detector.service.state import CameraReport, CameraState
from support.broker import free_port
from support.scripts import assert_one_line_error, run_script
from support.service import metrics, sample, taken_port


def test_a_scrape_gives_each_camera_s_state_over_all_its_runs():
    door, hall = CameraState("door"), CameraState("hall")
    door.report = CameraReport(stream="up", fps=9.0, frames=40, frames_received=42, people_in_view=1)
    door.report.count_latency(0.003)
    door.run_ended("down")
    door.report = CameraReport(stream="up", fps=8.0, frames=10, frames_received=10)
    door.restarts = 1
    for label, judged in (("mask", True), ("no_mask", True), ("no_mask", False)):
        door.count_event({"event": "person", "label": label, "judged": judged})
    door.count_event({"event": "alert", "at": 1.0})
    port = free_port()
    server = serve_metrics({"door": door, "hall": hall}, port, host="127.0.0.1")
    try:
        scrape = metrics(port)
        assert sample(scrape, "mask_detector_frames_total", camera="door") == 50
        assert sample(scrape, "mask_detector_frames_received_total", camera="door") == 52
        assert sample(scrape, "mask_detector_fps", camera="door") == 8.0
        assert sample(scrape, "mask_detector_stream_up", camera="door") == 1.0
        assert sample(scrape, "mask_detector_stream_up", camera="hall") == 0.0
        assert [sample(scrape, "mask_detector_people_total", camera="door", label=label)
                for label in ("mask", "no_mask", "incorrect", "not_judged")] == [1, 1, 0, 1]
        assert sample(scrape, "mask_detector_alerts_total", camera="door") == 1
        assert sample(scrape, "mask_detector_restarts_total", camera="door") == 1
        assert sample(scrape, "mask_detector_classifier_seconds_count", camera="door") == 1
        assert sample(scrape, "mask_detector_classifier_seconds_bucket", camera="door", le="0.005") == 1
        assert sample(scrape, "mask_detector_classifier_seconds_bucket", camera="door", le="0.002") == 0
        # The supervisor changes its states in place: the next scrape reads them anew.
        door.count_event({"event": "alert", "at": 2.0})
        assert sample(metrics(port), "mask_detector_alerts_total", camera="door") == 2
    finally:
        server.shutdown()


def test_the_build_the_last_frame_zones_and_health_are_served_on_loopback():
    door, hall = CameraState("door", zones={"till": PeopleCounts()}), CameraState("hall")
    door.count_event({"event": "person", "label": "no_mask", "judged": True, "zones": ["till"]})
    door.last_frame_at = 1796431642.5
    port = free_port()
    server = serve_metrics({"door": door, "hall": hall}, port, build={("1.0.0", "ab" * 32), ("1.0.0", "cd" * 32)})
    try:
        assert server.server_address[0] == "127.0.0.1"  # this machine only, unless the site says otherwise
        scrape = metrics(port)
        assert sample(scrape, "mask_detector_last_frame_timestamp_seconds", camera="door") == 1796431642.5
        assert sample(scrape, "mask_detector_last_frame_timestamp_seconds", camera="hall") is None  # no frame yet
        assert [sample(scrape, "mask_detector_build_info", version="1.0.0", model_sha256=sha)
                for sha in ("ab" * 32, "cd" * 32)] == [1, 1]
        assert [sample(scrape, "mask_detector_zone_people_total", camera="door", zone="till", label=label)
                for label in ("mask", "no_mask", "incorrect", "not_judged")] == [0, 1, 0, 0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert (answer.status, answer.read()) == (200, b"ok\n")
    finally:
        server.shutdown()


def test_a_port_in_use_is_one_line():
    with taken_port("127.0.0.1") as port:
        with pytest.raises(UserError) as refused:
            serve_metrics({}, port, host="127.0.0.1")
    assert str(refused.value).startswith(f"cannot serve metrics on 127.0.0.1:{port}: ")


def test_a_port_in_use_stops_the_service_before_it_writes_anything(tmp_path):
    with taken_port() as port:
        site = tmp_path / "site.toml"
        site.write_text(f"[service]\nevents = 'events.jsonl'\nstats = 'stats.jsonl'\nmetrics_port = {port}\n"
                        f"[[camera]]\nname = 'door'\nsource = '0'\n")
        result = run_script("detect_mask_video.py", "--config", site, cwd=tmp_path)
    assert_one_line_error(result, f"cannot serve metrics on 127.0.0.1:{port}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["site.toml"]
