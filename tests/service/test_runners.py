"""mask_detector/service/runners.py: cameras run as local processes or Ray actors, started again after a pause."""

import re

import numpy as np

from mask_detector.live import LiveSettings
from mask_detector.service.runners import LONGEST_PAUSE, STEADY_SECONDS, LocalCameras, pause_before_restart
from mask_detector.service.state import CameraReport
from support.broker import Mosquitto, Subscriber
from support.scripts import run_script, wait_until
from support.servers import MjpegServer
from support.service import PREFIX, Service, lines, photo, photo_clip


def test_the_pause_doubles_up_to_a_minute_and_starts_again_after_a_steady_run():
    pauses, pause = [], 1.0
    for _ in range(8):
        now, pause = pause_before_restart(ran_seconds=2, pause=pause)
        pauses.append(now)
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60] and LONGEST_PAUSE == 60
    assert pause_before_restart(ran_seconds=STEADY_SECONDS, pause=60) == (1.0, 2.0)


def test_local_cameras_say_what_they_saw_and_when_they_stop(samples, tmp_path):
    clip = photo_clip(samples, tmp_path / "clip.mp4")
    said = []
    cameras = LocalCameras([LiveSettings(source=str(clip), name="door"),
                            LiveSettings(source=str(tmp_path / "missing.mp4"), name="hall")], said.append)
    got = []
    try:
        wait_until(lambda: got.extend(cameras.poll(0.2)) or cameras.cameras["door"].ended
                   and any(kind == "restart" for kind, _, _ in got), 180)
    finally:
        got += cameras.stop()
    door = [(kind, body) for kind, name, body in got if name == "door"]
    hall = [(kind, body) for kind, name, body in got if name == "hall"]
    assert [kind for kind, _ in door].count("ended") == 1 and door[-1][0] == "ended"
    events = [body for kind, body in door if kind == "event"]
    assert [e["event"] for e in events].count("alert") == 1 and all(e["camera"] == "door" for e in events)
    last_report = [body for kind, body in door if kind == "report"][-1]
    assert isinstance(last_report, CameraReport) and last_report.stream == "ended" and last_report.frames == 30
    # The hall's source does not open: it says why, and is started again after a pause.
    said_first = next(body for kind, body in hall if kind != "report")  # it may report while it loads
    assert "missing.mp4" in said_first
    assert ("restart", 1.0) in hall
    assert re.search(r"camera hall: stopped \(exit status 3\); starting it again in 1 s", "\n".join(said))


def test_cameras_on_ray_reach_the_broker_and_the_files(samples, tmp_path):
    clip = photo_clip(samples, tmp_path / "clip.mp4")
    with Mosquitto(tmp_path / "broker") as broker:
        subscriber = Subscriber(broker.port, f"{PREFIX}/#", client_id="ray-subscriber")
        assert wait_until(lambda: subscriber.client.is_connected(), 30)
        site = tmp_path / "site.toml"
        site.write_text(f"[service]\nevents = 'events.jsonl'\n[mqtt]\nhost = '127.0.0.1'\nport = {broker.port}\n"
                        f"prefix = '{PREFIX}'\n[[camera]]\nname = 'door'\nsource = '{clip}'\n")
        result = run_script("detect_mask_video.py", "--config", site, "--ray", "local", cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
        written = lines(tmp_path / "events.jsonl")
        assert [e["event"] for e in written].count("alert") == 1
        people = sum(e["event"] == "person" for e in written)
        assert re.search(rf"door {people} people, 1 alerts, 0 restarts", result.stdout), result.stdout
        assert wait_until(lambda: len(subscriber.on(f"{PREFIX}/door/events")) >= len(written), 60)
        assert subscriber.on(f"{PREFIX}/door/events") == written
        subscriber.close()


def test_cameras_on_ray_stop_on_sigterm_as_local_ones_do(samples, tmp_path):
    """Once, ray.init's own SIGTERM handler killed the driver with a stack dump (exit status 15, no last
    statistics), and Ctrl-C killed the actors before their clips were written."""
    scene = [photo(samples, "maksssksksss716.jpg"), np.full((480, 640, 3), 90, np.uint8)]
    with MjpegServer(scene, [100_000], fps=10, hold=15) as door:
        site = tmp_path / "site.toml"
        site.write_text(f"[service]\nevents = 'events.jsonl'\nstats = 'stats.jsonl'\n[[camera]]\nname = 'door'\n"
                        f"source = '{door.url}'\nclips = 'clips'\nclip_before = 0.5\nclip_after = 30\n")
        service = Service(site, tmp_path, "--ray", "local")
        try:
            alerts = wait_until(lambda: [e for e in lines(tmp_path / "events.jsonl") if e["event"] == "alert"], 300)
            assert alerts, service.said()
        finally:
            status = service.stop()
    said = service.said()
    assert status == 143 and "stopped: door" in said and "SIGTERM received" not in said, said
    # The clip an alert named is written, cut short at the stop (its 30 s after were not over).
    for alert in [e for e in lines(tmp_path / "events.jsonl") if e["event"] == "alert"]:
        assert (tmp_path / alert["clip"]).is_file(), alert
    assert [row["camera"] for row in lines(tmp_path / "stats.jsonl")] == ["door"]  # the last statistics
