"""mask_detector/service/supervisor.py through `detect_mask_video.py --config`: two cameras streaming over
HTTP, a real Mosquitto broker stopped and started mid-run, a real subscriber, a real scrape of /metrics, a
camera process killed and started again; and the counts, message by message, across a killed camera."""

import contextlib
import json
import os
import re
import signal
import socket
import time

import numpy as np
import pytest

from mask_detector import installed_version
from mask_detector.files import sha256_of
from mask_detector.pipeline import fastest_model
from mask_detector.service.config import load_site
from mask_detector.service.mqtt import SENSORS
from mask_detector.service.state import CameraReport
from mask_detector.service.supervisor import Supervisor
from support.broker import Mosquitto, Subscriber, free_port, retained
from support.scripts import wait_until
from support.servers import MjpegServer, RecordingServer
from support.service import PREFIX, Service, frames_of, lines, metrics, photo, sample

SITE = """
[service]
events = "events.jsonl"
stats = "stats.jsonl"
stats_every = 2
state_every = 1

[mqtt]
host = "127.0.0.1"
port = {port}
prefix = "{prefix}"

[defaults]
alert_cooldown = 0
reconnect_for = 5

[[camera]]
name = "door"
source = "{door}"
snapshots = "snapshots"

[[camera]]
name = "hall"
source = "{hall}"
max_fps = 5

[[notify]]
webhook = "{webhook}/alerts"
cameras = ["door"]
"""


class Run:
    """What a service run showed, step by step. A step that fails is noted and the run goes on: each test
    reads what it checks, so one failure fails the test that reads it, not every test of the run."""

    def __init__(self):
        self.seen, self.failed = {}, {}

    def see(self, name, look, limit=120):
        """Note ``look()`` once it is true within ``limit`` seconds (None if never, or if it raised)."""
        try:
            self.seen[name] = wait_until(look, limit)
        except Exception as error:  # noqa: BLE001 — noted for the test that reads it
            self.seen[name], self.failed[name] = None, repr(error)
        return self.seen[name]

    def __getitem__(self, name):
        if self.seen.get(name) is None:
            pytest.fail(f"the service run never showed {name}: {self.failed.get(name, 'not within its limit')}\n"
                        f"{self.seen.get('said', '')}")
        return self.seen[name]


def scene_and_service(run, folder, broker, door, hall, webhook):
    """The steps of the run, each waited for; those after a step that failed are still tried."""
    metrics_port = free_port()
    site = folder / "site.toml"
    site.write_text(SITE.format(port=broker.port, prefix=PREFIX, door=door.url, hall=hall.url, webhook=webhook.url))
    service = Service(site, folder, "--metrics-port", metrics_port)

    def alerts(camera):
        return [e for e in lines(folder / "events.jsonl") if e["camera"] == camera and e["event"] == "alert"]

    def scrape_when(holds):
        return lambda: (lambda scrape: scrape if holds(scrape) else None)(metrics(metrics_port))

    try:
        run.see("first alert", lambda: alerts("door"), 180)
        run.see("first scrape", scrape_when(lambda s: frames_of(s, "door") > 0 and frames_of(s, "hall") > 0), 60)
        # The broker goes away while people keep coming; their events wait, then go out.
        broker.stop()
        before = len(alerts("door"))
        run.see("alerts while the broker was away", lambda: len(alerts("door")) >= before + 2)
        broker.start()
        # A camera's process is killed: it is started again, and the other camera goes on meanwhile.
        if run.see("door's process", lambda: service.pid_of("door"), 10):
            hall_before = frames_of(metrics(metrics_port), "hall")
            os.kill(service.pid_of("door"), signal.SIGKILL)
            run.see("hall going on", scrape_when(lambda s: frames_of(s, "hall") > hall_before), 60)
        run.see("door started again", lambda: service.pid_of("door", 2))
        restarted = len(alerts("door"))
        run.see("an alert after the restart", lambda: len(alerts("door")) > restarted)
        # Counted as it is written: a scrape at once, no waiting, has every alert in the file by then.
        written = len(alerts("door"))
        run.seen["alerts written, and counted"] = (written, sample(metrics(metrics_port), "mask_detector_alerts_total",
                                                                   camera="door"))
        run.seen["last scrape"] = metrics(metrics_port)
        run.see("3 people without a mask counted", scrape_when(
            lambda s: (sample(s, "mask_detector_people_total", camera="door", label="no_mask") or 0) >= 3), 60)
    finally:
        run.seen["status"] = service.stop()
        run.seen["said"] = service.said()


@pytest.fixture(scope="module")
def site_run(samples, tmp_path_factory):
    """Two cameras for some seconds, through a broker restart and a killed camera; what was seen meanwhile."""
    folder = tmp_path_factory.mktemp("site")
    door_scene = [photo(samples, "maksssksksss716.jpg"), np.full((480, 640, 3), 90, np.uint8)]
    hall_scene = photo(samples, "maksssksksss244.jpg")
    run = Run()
    with Mosquitto(folder / "broker") as broker, \
            MjpegServer(door_scene, [100_000] * 3, fps=10, hold=15) as door, \
            MjpegServer(hall_scene, [100_000] * 3, fps=10) as hall, RecordingServer() as webhook:
        subscriber = Subscriber(broker.port, f"{PREFIX}/#")
        run.see("the subscriber connected", lambda: subscriber.client.is_connected(), 30)
        scene_and_service(run, folder, broker, door, hall, webhook)
        run.seen["events"] = lines(folder / "events.jsonl")
        run.seen["folder"] = folder
        run.seen["webhook"] = [json.loads(body) for _, _, _, body, _ in webhook.answered()]

        def delivered():
            # What was sent last, as the service stopped, may still be on its way to the subscriber.
            got = subscriber.on(f"{PREFIX}/door/events") + subscriber.on(f"{PREFIX}/hall/events")
            return all(event in got for event in run.seen["events"])

        run.see("every event delivered", delivered, 60)
        run.seen["stats"] = lines(folder / "stats.jsonl")
        run.seen["received"] = {camera: subscriber.on(f"{PREFIX}/{camera}/events") for camera in ("door", "hall")}
        subscriber.close()
        run.see("retained", lambda: retained(
            broker.port, lambda got: sum(t.endswith("/config") for t in got) >= 2 * len(SENSORS)
            and all(got.get(f"{PREFIX}/{c}/availability") == "offline" for c in ("door", "hall"))), 1)
    return run


def test_the_last_alert_s_snapshot_is_retained_for_home_assistant(site_run):
    got = site_run["retained"]
    last = [e for e in site_run["events"] if e["event"] == "alert" and e["camera"] == "door"][-1]
    assert got[f"{PREFIX}/door/snapshot"] == (site_run["folder"] / last["snapshot"]).read_bytes()
    assert got["homeassistant/image/mask_detector_door/last_alert/config"]["image_topic"] == f"{PREFIX}/door/snapshot"
    assert f"{PREFIX}/hall/snapshot" not in got  # the hall saves none


def test_every_alert_of_the_door_and_none_of_the_hall_reached_the_webhook(site_run):
    alerts = [e for e in site_run["events"] if e["event"] == "alert" and e["camera"] == "door"]
    assert len(alerts) >= 4
    # Sent before the service ended (it gives them time to go): each door alert once, in order, and nothing else.
    assert site_run["webhook"] == alerts


def test_every_event_written_reached_mqtt_across_a_broker_restart(site_run):
    assert site_run["status"] == 143, site_run["said"]  # stopped by SIGTERM, as a service is
    assert site_run["alerts while the broker was away"]
    for camera in ("door", "hall"):
        written = [e for e in site_run["events"] if e["camera"] == camera]
        received = site_run["received"][camera]
        assert written, camera
        # Each once, in order; a message sent again by the broker's restart is the same message.
        assert [e for i, e in enumerate(received) if e not in received[:i]] == written, camera


def test_states_are_retained_and_home_assistant_finds_them(site_run):
    got = site_run["retained"]
    for camera in ("door", "hall"):
        state = got[f"{PREFIX}/{camera}/state"]
        assert state["camera"] == camera and state["stream"] in ("ended", "down", "up")
        assert state["people"] >= 1 and 0 <= (state["compliance"] or 0) <= 1
        assert got[f"{PREFIX}/{camera}/availability"] == "offline"  # the service stopped
        configs = {topic: config for topic, config in got.items()
                   if topic.startswith("homeassistant/") and f"/mask_detector_{camera}/" in topic}
        # The door saves snapshots: an image entity shows its last alert's.
        image = {"image"} if camera == "door" else set()
        assert {topic.split("/")[1] for topic in configs} == {"sensor", "binary_sensor"} | image
        assert len(configs) == len(SENSORS) + len(image)
    assert got[f"{PREFIX}/door/state"]["people_no_mask"] >= 2


def test_metrics_are_scraped_over_http(site_run):
    scrape = site_run["last scrape"]
    for camera in ("door", "hall"):
        assert sample(scrape, "mask_detector_frames_total", camera=camera) > 0
        assert sample(scrape, "mask_detector_classifier_seconds_count", camera=camera) > 0
        assert sample(scrape, "mask_detector_fps", camera=camera) is not None
        assert sample(scrape, "mask_detector_stream_up", camera=camera) is not None
    written, counted = site_run["alerts written, and counted"]
    # Every alert written, across the killed camera's two lives (more may come between the count and the scrape).
    assert counted >= written >= 4
    assert site_run["3 people without a mask counted"]
    assert sample(scrape, "mask_detector_restarts_total", camera="door") == 1
    assert sample(scrape, "mask_detector_restarts_total", camera="hall") == 0
    for camera in ("door", "hall"):  # frames came within the run, which took minutes at most
        assert time.time() - 900 < sample(scrape, "mask_detector_last_frame_timestamp_seconds", camera=camera) \
            < time.time()
    build = {"version": installed_version() or "unknown", "model_sha256": sha256_of(fastest_model())}
    assert sample(scrape, "mask_detector_build_info", **build) == 1


def test_the_people_and_alerts_counted_are_those_written_across_the_killed_camera(site_run):
    # The service's last words and its last state on MQTT: not one alert or person more or fewer than written.
    for camera in ("door", "hall"):
        written = [e for e in site_run["events"] if e["camera"] == camera]
        alerts, people = (sum(e["event"] == kind for e in written) for kind in ("alert", "person"))
        assert re.search(rf"\b{camera} {people} people, {alerts} alerts,", site_run["said"]), site_run["said"]
        state = site_run["retained"][f"{PREFIX}/{camera}/state"]
        assert (state["alerts"], state["people"]) == (alerts, people)


def test_a_killed_camera_is_started_again_while_the_other_goes_on(site_run):
    assert re.search(r"camera door: stopped \(exit status -9\); starting it again in 1 s", site_run["said"])
    assert site_run["hall going on"]
    # The frames go on from where the killed process left them.
    assert frames_of(site_run["last scrape"], "door") > frames_of(site_run["first scrape"], "door")


def test_stats_give_each_camera_a_line_per_period(site_run):
    for camera in ("door", "hall"):
        rows = [row for row in site_run["stats"] if row["camera"] == camera]
        assert len(rows) >= 3
        assert {"people_mask", "people_no_mask", "compliance", "fps", "uptime", "seconds"} <= set(rows[0])
        assert all(0 <= row["uptime"] <= 1 for row in rows)
    door = [row for row in site_run["stats"] if row["camera"] == "door"]
    people = [e for e in site_run["events"] if e["camera"] == "door" and e["event"] == "person"]
    # People who came, each counted once, in their period: as many as the events file holds.
    assert sum(row["people_no_mask"] for row in door) == sum(e["label"] == "no_mask" and e["judged"] for e in people)
    assert sum(row["people_no_mask"] for row in door) >= 3


def test_the_counts_agree_with_the_events_file_after_every_message_across_a_killed_camera(tmp_path):
    """/metrics once said 3 alerts where the events file held 4: the count came with the camera's state,
    which could come after the event, or never, when the camera was killed in between.

    The supervisor now counts from the events it writes. Here it handles a camera's messages one at a time,
    as a run that is killed right after an alert sends them: an alert, a report taken before it, the kill
    (a restart, the run's last report never sent), a new run counting from 0, a person, an alert. After each
    one, the events file, a scrape of /metrics and the latest state on MQTT give the same counts.
    """
    events, metrics_port = tmp_path / "events.jsonl", free_port()
    with Mosquitto(tmp_path / "broker") as broker, contextlib.ExitStack() as stack:
        subscriber = Subscriber(broker.port, f"{PREFIX}/#", client_id="count-subscriber")
        stack.callback(subscriber.close)
        assert wait_until(lambda: subscriber.client.is_connected(), 30)
        site = tmp_path / "site.toml"
        site.write_text(f"[service]\nevents = '{events}'\nstate_every = 600\nmetrics_port = {metrics_port}\n"
                        f"[mqtt]\nhost = '127.0.0.1'\nport = {broker.port}\nprefix = '{PREFIX}'\n"
                        f"[[camera]]\nname = 'door'\nsource = '0'\n")
        supervisor = stack.enter_context(Supervisor(load_site(site), cameras=None, say=print).outputs())

        def last_state():
            return (subscriber.on(f"{PREFIX}/door/state") or [None])[-1]

        def assert_counts_agree(frames):
            written = lines(events)
            alerts, people = (sum(e["event"] == kind for e in written) for kind in ("alert", "person"))
            scrape = metrics(metrics_port)
            assert sample(scrape, "mask_detector_alerts_total", camera="door") == alerts
            assert sum(sample(scrape, "mask_detector_people_total", camera="door", label=label)
                       for label in ("mask", "no_mask", "incorrect", "not_judged")) == people
            assert frames_of(scrape, "door") == frames
            # MQTT delivers in its own time: the latest state the subscriber has, once it has the one sent.
            assert wait_until(lambda: last_state() and (last_state()["alerts"], last_state()["people"]) == (
                alerts, people), 30), last_state()

        def event(kind, **more):
            return {"camera": "door", "at": 1000.0, "event": kind, "track_id": 1, "label": "no_mask", **more}

        for message, frames in [
            (("report", "door", CameraReport(stream="up", frames=40, frames_received=40)), 40),
            (("event", "door", event("alert")), 40),
            (("report", "door", CameraReport(stream="up", frames=39, frames_received=39)), 39),  # taken before
            (("restart", "door", 1.0), 39),  # killed: its frames after that report are lost, its alert is not
            (("report", "door", CameraReport(stream="up", frames=5, frames_received=5)), 44),
            (("event", "door", event("person", judged=True)), 44),
            (("event", "door", event("alert", track_id=2)), 44),
        ]:
            supervisor.handle(*message)
            assert_counts_agree(frames)
        assert supervisor.states["door"].restarts == 1


def test_stats_count_each_count_zone_s_people_per_period(tmp_path):
    stats, site = tmp_path / "stats.jsonl", tmp_path / "site.toml"
    site.write_text(f"[service]\nstats = '{stats}'\n[[camera]]\nname = 'door'\nsource = '0'\n"
                    "zones = [{name = 'till', kind = 'count', points = [[0, 0], [0.5, 0], [0.5, 1]]}]\n")
    with Supervisor(load_site(site), cameras=None, say=print).outputs() as supervisor:
        person = {"camera": "door", "at": 1000.0, "event": "person", "track_id": 1, "judged": True}
        for label, zones in (("no_mask", ["till"]), ("mask", [])):
            supervisor.handle("event", "door", person | {"label": label, "zones": zones})
        supervisor._write_stats(force=True)
        supervisor.handle("event", "door", person | {"label": "mask", "zones": ["till"]})
        supervisor._write_stats(force=True)
    first, second = lines(stats)
    assert (first["people_no_mask"], first["people_mask"], first["zones"]["till"]["people_no_mask"],
            first["zones"]["till"]["people_mask"], first["zones"]["till"]["compliance"]) == (1, 1, 1, 0, 0.0)
    assert (second["people_mask"], second["zones"]["till"]["people_mask"],
            second["zones"]["till"]["people_no_mask"]) == (1, 1, 0)  # each person in their period only


def test_a_camera_that_never_connects_is_down_and_unavailable(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker, socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        subscriber = Subscriber(broker.port, f"{PREFIX}/#", client_id="down-subscriber")
        assert wait_until(lambda: subscriber.client.is_connected(), 30)
        site = tmp_path / "site.toml"
        site.write_text(f"[service]\nstate_every = 1\n[mqtt]\nhost = '127.0.0.1'\nport = {broker.port}\n"
                        f"prefix = '{PREFIX}'\n[[camera]]\nname = 'door'\n"
                        f"source = 'http://127.0.0.1:{closed.getsockname()[1]}/video'\ntimeout = 1\nreconnect_for = 0\n")
        service = Service(site, tmp_path)
        try:
            assert wait_until(lambda: service.said().count("starting it again") >= 2, 120), service.said()
            assert wait_until(lambda: (subscriber.on(f"{PREFIX}/door/availability") or [None])[-1] == "offline", 30)
            streams = [state["stream"] for state in subscriber.on(f"{PREFIX}/door/state")]
        finally:
            service.stop()
            subscriber.close()
    assert "down" in streams and "starting" not in streams[streams.index("down"):], streams
