"""mask_detector/service/web.py through `detect_mask_video.py --config` with `web`: a real service watching two MJPEG
cameras (one blurred, named `<script>`; one keeping statistics only), a real Mosquitto that comes late, the API read
over HTTP, and the pages in Debian's Chromium, headless.

Set MASK_DETECTOR_SCREENSHOTS to a folder to keep a screenshot of each page there (the README's pictures)."""

import contextlib
import http.cookiejar
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from mask_detector.files import safe_name
from mask_detector.service.event_store import EventStore
from mask_detector.service.web import WRONG_PASSWORD_SECONDS, Sessions, local_path
from support.broker import Mosquitto, free_port
from support.browser import chromium
from support.scripts import ROOT, assert_one_line_error, run_script, script_env, wait_until
from support.servers import MjpegServer
from support.service import PREFIX, Service, lines, photo, taken_port
from test_supervisor import Run

PASSWORD = "correct horse 7"
DOOR = "<script>"
DOOR_ID = safe_name(DOOR)
EARLIER_ROWS = 2  # the database's rows before the service starts

SITE = """
[service]
events = "events.jsonl"
stats_every = 2
web = "127.0.0.1:{web_port}"
web_password_env = "TEST_WEB_PASSWORD"
database = "site.db"

[mqtt]
host = "127.0.0.1"
port = {broker_port}
prefix = "{prefix}"
discovery_prefix = ""

[defaults]
alert_cooldown = 0
max_fps = 10

[[camera]]
name = "{door_name}"
source = "{door}"
privacy = "blur"
snapshots = "snapshots"
clips = "clips"
clip_before = 1
clip_after = 1
keep_days = 7

[[camera]]
name = "hall"
source = "{hall}"
privacy = "stats"
"""


class Client:
    """An HTTP client with its own cookies, as one browser tab is."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path, timeout=30):
        """(status, headers, body) of a GET."""
        try:
            with self.opener.open(self.base + path, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def json(self, path):
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def log_in(self, password):
        data = urllib.parse.urlencode({"password": password, "next": "/"}).encode()
        try:
            with self.opener.open(self.base + "/login", data=data, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def readiness(client):
    status, _, body = client.get("/readyz")
    return status, body.decode()


def visible(driver, script, limit=90):
    """Wait until the page's ``script`` (a JavaScript expression) is true; its value."""
    return wait_until(lambda: driver.execute_script(f"return {script}"), limit, 0.25)


def screenshot(driver, name):
    folder = os.environ.get("MASK_DETECTOR_SCREENSHOTS")
    if folder:
        driver.save_screenshot(str(Path(folder) / f"web_{name}.png"))


def in_the_browser(run, base):
    """What a person sees: the login, the live pictures, an alert with its snapshot and clip, the chart."""
    with chromium() as driver:
        driver.get(base + "/")
        run.seen["login asked"] = driver.current_url
        password = driver.find_element("name", "password")
        password.send_keys("not it")
        password.submit()
        run.see("wrong password said", lambda: visible(driver, "document.querySelector('.wrong')?.textContent"), 30)
        driver.find_element("name", "password").send_keys(PASSWORD)
        driver.find_element("name", "password").submit()
        run.see("in, on the overview", lambda: driver.current_url.rstrip("/") == base and driver.title, 30)
        run.see("overview picture width", lambda: visible(
            driver, f"document.querySelector('.card[data-camera=\"{DOOR_ID}\"] img.live')?.naturalWidth"))
        run.see("overview figures", lambda: visible(
            driver, "document.querySelector('[data-field=\"people_today\"]').textContent.match(/^\\d+$/)"))
        run.seen["overview"] = driver.execute_script(
            "return {names: [...document.querySelectorAll('.card h2 a')].map(a => a.textContent),"
            " scripts: document.querySelectorAll('script').length,"
            " hall_images: document.querySelectorAll('.card[data-camera=\"hall\"] img').length}")
        screenshot(driver, "overview")

        driver.get(f"{base}/cameras/{DOOR_ID}")
        run.see("live picture width", lambda: visible(driver, "document.getElementById('live').naturalWidth"))
        run.see("snapshot in the timeline", lambda: visible(
            driver, "document.querySelector('#timeline img')?.complete"
                    " && document.querySelector('#timeline img').naturalWidth"))
        run.see("chart", lambda: visible(driver, "document.querySelector('#chart canvas')?.width"))
        run.seen["camera page"] = driver.execute_script(
            "return {title: document.querySelector('h1').firstChild.textContent.trim(),"
            " scripts: document.querySelectorAll('script').length}")
        # The oldest alert's: the newest one's clip may still be filling its seconds after the alert.
        # Clicked in the page's own turn: the list is redrawn every few seconds, leaving found elements stale.
        driver.execute_script("[...document.querySelectorAll('#timeline button')].pop().click()")
        run.see("clip plays on the camera page", lambda: visible(
            driver, "document.getElementById('clip').readyState >= 2 && document.getElementById('clip').videoWidth"))
        screenshot(driver, "camera")

        driver.get(f"{base}/events?kind=alert")
        run.see("an alert row", lambda: visible(driver, "document.querySelectorAll('#events tbody tr').length"))
        run.see("its snapshot", lambda: visible(driver, "document.querySelector('#events tbody img')?.naturalWidth"))
        run.seen["events page camera"] = driver.execute_script(
            "return document.querySelector('#events tbody tr td:nth-child(2)').textContent")
        driver.execute_script("[...document.querySelectorAll('#events tbody button')].pop().click()")
        run.see("clip plays on the events page", lambda: visible(
            driver, "document.getElementById('clip').readyState >= 2"))
        screenshot(driver, "events")
        driver.get(f"{base}/api")
        run.seen["api page"] = driver.find_element("tag name", "main").text
        screenshot(driver, "api")


@pytest.fixture(scope="module")
def web_run(samples, tmp_path_factory):
    """The service with its web page, the broker coming late; what the API and the browser showed."""
    folder = tmp_path_factory.mktemp("web")
    web_port, broker_port = free_port(), free_port()
    door_scene = [photo(samples, "maksssksksss716.jpg"), photo(samples, "maksssksksss244.jpg")]
    run = Run()
    with MjpegServer(door_scene, [100_000] * 3, fps=10, hold=30) as door, \
            MjpegServer(photo(samples, "maksssksksss716.jpg"), [100_000] * 3, fps=10) as hall:
        # The database of an earlier run: an alert 10 days old (past keep_days) and one of a minute ago.
        earlier = EventStore(folder / "site.db")
        for age in (10 * 86400, 60):  # rows 1 and 2 (EARLIER_ROWS)
            earlier.add_event({"camera": DOOR, "at": time.time() - age, "event": "alert", "track_id": 1,
                               "label": "no_mask", "snapshot": str(folder / "gone.jpg")})
        earlier.close()
        site = folder / "site.toml"
        site.write_text(SITE.format(web_port=web_port, broker_port=broker_port, prefix=PREFIX, door_name=DOOR,
                                    door=door.url, hall=hall.url))
        service = Service(site, folder, env=script_env(TEST_WEB_PASSWORD=PASSWORD))
        base = f"http://127.0.0.1:{web_port}"
        client = Client(base)
        broker = Mosquitto(folder / "broker", port=broker_port)
        try:
            run.see("web page said", lambda: "web page on" in service.said(), 120)
            run.see("health", lambda: client.get("/healthz")[0] == 200, 60)
            run.seen["unready at first"] = readiness(client)
            run.see("streams up, broker away", lambda: (lambda s: s if s[0] == 503 and "stream" not in s[1]
                                                        else None)(readiness(client)), 120)
            broker.start()
            run.see("ready", lambda: readiness(client)[0] == 200, 60)
            run.seen["api before login"] = client.get("/api/cameras")[0]
            started = time.monotonic()
            run.seen["wrong password"] = (*client.log_in("guess"), time.monotonic() - started)
            run.seen["right password"] = client.log_in(PASSWORD)
            run.see("an alert with its clip", lambda: [
                event for event in client.json(f"/api/events?camera={DOOR_ID}&kind=alert")["events"]
                if event.get("clip_url") and client.get(event["clip_url"])[0] == 200], 180)
            run.see("a person event", lambda: client.json("/api/events?kind=person")["total"], 120)
            run.see("a stats hour with people", lambda: [hour for hour in client.json(
                f"/api/stats?camera={DOOR_ID}&hours=24")[0]["hours"] if hour["people"]], 60)
            run.seen["latest"] = client.get(f"/api/cameras/{DOOR_ID}/latest.jpg")
            run.seen["hall pictures"] = [client.get(f"/api/cameras/hall/{name}")[0]
                                         for name in ("latest.jpg", "live.mjpg")]
            run.seen["cameras"] = client.json("/api/cameras")
            run.seen["openapi"] = client.json("/openapi.json")
            try:
                in_the_browser(run, base)
            except Exception as error:  # noqa: BLE001 — said by the tests that read what it did not see
                run.seen["said"] = f"the browser stopped: {error!r}"
            run.seen["all events"] = client.json("/api/events?limit=500")
            run.seen["client"] = client
            run.seen["api"] = {path: client.get(path) for path in ("/", "/events", f"/cameras/{DOOR_ID}", "/api")}
            run.seen["events file"] = lines(folder / "events.jsonl")
            run.seen["folder"] = folder
            run.seen["service"] = service
            yield run  # the service goes on while the tests read the API
        finally:
            service.stop()
            broker.stop()


def test_healthz_answers_and_readyz_says_why_it_is_not_ready_until_streams_and_broker_are_there(web_run):
    status, text = web_run["unready at first"]
    assert status == 503 and ("stream starting" in text or "MQTT broker away" in text), text
    status, text = web_run["streams up, broker away"]
    assert text.strip() == "MQTT broker away"
    assert web_run["ready"]


def test_the_page_and_api_ask_for_the_password_and_a_wrong_one_is_slowed(web_run):
    assert "/login?next=/" in web_run["login asked"]
    assert web_run["api before login"] == 401
    status, body, seconds = web_run["wrong password"]
    assert status == 401 and b"Wrong password" in body and seconds >= WRONG_PASSWORD_SECONDS * 0.95
    assert web_run["right password"][0] == 200
    assert web_run["wrong password said"] == "Wrong password."


def test_no_secret_shows_in_a_page_or_the_log(web_run):
    assert PASSWORD not in web_run["service"].said()
    for path, (status, headers, body) in web_run["api"].items():
        assert status == 200, path
        assert PASSWORD.encode() not in body
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_the_live_picture_loads_and_is_blurred_as_the_camera_s_privacy_says(web_run, samples):
    from mask_detector.faces import create_face_detector

    assert web_run["overview picture width"] > 0 and web_run["live picture width"] > 0
    status, headers, body = web_run["latest"]
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    detector = create_face_detector("yunet")
    for name in ("maksssksksss716.jpg", "maksssksksss244.jpg"):  # the scene's faces, as they are, are found
        assert detector.find(photo(samples, name))[0], name
    assert detector.find(picture)[0] == [], "a face shows clearly in a blurred camera's live picture"


def test_a_statistics_only_camera_has_no_picture_anywhere(web_run):
    assert web_run["hall pictures"] == [404, 404]
    assert web_run["overview"]["hall_images"] == 0
    hall = next(camera for camera in web_run["cameras"] if camera["id"] == "hall")
    assert hall["pictures"] is False
    for event in web_run["all events"]["events"]:
        if event["camera"] == "hall":
            assert "snapshot_url" not in event and "clip_url" not in event


def test_an_alert_shows_in_the_browser_with_its_snapshot_and_a_clip_that_plays(web_run):
    assert web_run["snapshot in the timeline"] > 0 and web_run["its snapshot"] > 0
    assert web_run["clip plays on the camera page"] > 0
    assert web_run["clip plays on the events page"]
    assert web_run["chart"] > 0


def test_a_camera_named_like_markup_shows_as_text(web_run):
    assert web_run["overview"]["names"] == [DOOR, "hall"]
    assert web_run["camera page"]["title"] == DOOR
    assert web_run["events page camera"] in (DOOR, "hall")
    # The pages' own scripts only: app.js, and uPlot on a camera's page.
    assert web_run["overview"]["scripts"] == 1 and web_run["camera page"]["scripts"] == 2
    _, _, body = web_run["api"]["/"]
    assert b"<script>" not in body.replace(b'<script src="/static/app.js"></script>', b"")


def test_the_api_serves_what_the_events_file_holds(web_run):
    client, written = web_run["client"], web_run["events file"]
    served = web_run["all events"]
    this_run = [event for event in served["events"] if event["id"] > EARLIER_ROWS]
    assert len(this_run) >= len([e for e in written if e["at"] <= served["events"][0]["at"]])
    newest_first = [event["at"] for event in served["events"]]
    assert newest_first == sorted(newest_first, reverse=True)
    by_time = {(event["camera"], event["at"], event["event"]) for event in written}
    assert {(event["camera"], event["at"], event["event"]) for event in this_run} <= by_time
    alert = web_run["an alert with its clip"][0]
    on_disk = next(e for e in written if e["camera"] == DOOR and e["at"] == alert["at"] and e["event"] == "alert")
    assert "snapshot" not in alert and "clip" not in alert  # URLs, never the service's file paths
    status, headers, body = client.get(alert["snapshot_url"])
    assert status == 200 and body == (web_run["folder"] / on_disk["snapshot"]).read_bytes()
    assert client.json(f"/api/events/{alert['id']}")["at"] == alert["at"]
    assert client.get("/api/events/999999")[0] == 404


def test_an_earlier_run_s_events_are_served_but_those_past_keep_days(web_run):
    earlier = [event for event in web_run["all events"]["events"] if event["id"] <= EARLIER_ROWS]
    assert len(earlier) == 1 and time.time() - earlier[0]["at"] < 86400
    assert "snapshot_url" in earlier[0] and web_run["client"].get(earlier[0]["snapshot_url"])[0] == 404  # file gone


def test_the_api_filters_and_pages_events(web_run):
    client, served = web_run["client"], web_run["all events"]["events"]
    alerts = client.json(f"/api/events?camera={DOOR_ID}&kind=alert&limit=500")["events"]
    assert alerts and all(e["camera"] == DOOR and e["event"] == "alert" for e in alerts)
    labelled = client.json("/api/events?label=no_mask&limit=500")["events"]
    assert labelled and all(e["label"] == "no_mask" for e in labelled)
    # Pages of a window that new events cannot enter (they come with later times): the same events as one query.
    middle = served[len(served) // 2]["at"]
    window = client.json(f"/api/events?before={middle}&limit=500")["events"]
    first, second = (client.json(f"/api/events?before={middle}&limit=2&offset={offset}")["events"] for offset in (0, 2))
    assert len(window) >= 4 and [e["id"] for e in first + second] == [e["id"] for e in window[:4]]
    after = client.json(f"/api/events?after={middle}&limit=500")["events"]
    before = client.json(f"/api/events?before={middle}&limit=500")
    assert all(e["at"] >= middle for e in after) and all(e["at"] < middle for e in before["events"])
    assert client.get("/api/events?kind=visit")[0] == 422
    assert client.get("/api/events?after=yesterday")[0] == 422
    assert client.get("/api/cameras/nowhere")[0] == 404


def test_stats_give_compliance_by_hour_and_the_api_page_lists_every_route(web_run):
    hours = web_run["client"].json(f"/api/stats?camera={DOOR_ID}&hours=168")[0]["hours"]
    assert len(hours) == 168 and hours == sorted(hours, key=lambda hour: hour["hour"])
    busy = [hour for hour in hours if hour["people"]]
    assert busy and all(hour["people"] == sum(hour[f"people_{label}"] for label in
                                              ("mask", "no_mask", "incorrect", "not_judged")) for hour in busy)
    paths = set(web_run["openapi"]["paths"])
    assert {"/api/cameras", "/api/cameras/{camera_id}", "/api/cameras/{camera_id}/latest.jpg",
            "/api/cameras/{camera_id}/live.mjpg", "/api/events", "/api/events/{event_id}",
            "/api/events/{event_id}/snapshot.jpg", "/api/events/{event_id}/clip.mp4", "/api/stats", "/healthz",
            "/readyz"} <= paths
    for path in paths:
        assert path in web_run["api page"]


def test_the_service_stops_cleanly_with_every_event_of_its_file_in_the_database(web_run):
    import sqlite3

    service = web_run["service"]
    assert service.stop() == 143, service.said()
    assert PASSWORD not in service.said()
    with contextlib.closing(sqlite3.connect(web_run["folder"] / "site.db")) as db:
        rows = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert rows == len(lines(web_run["folder"] / "events.jsonl")) + 1  # and the earlier run's recent alert


def test_a_web_page_for_other_machines_needs_a_password(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("[service]\nweb = '0.0.0.0:8080'\n[[camera]]\nname = 'a'\nsource = '0'\n")
    result = run_script("detect_mask_video.py", "--config", site, cwd=tmp_path)
    assert_one_line_error(result, "0.0.0.0:8080", "needs a password", "web_password_env")
    site.write_text("[[camera]]\nname = 'a'\nsource = '0'\n")
    result = run_script("detect_mask_video.py", "--config", site, "--web", "0.0.0.0:8080", cwd=tmp_path)
    assert_one_line_error(result, "--web", "needs a password")
    result = run_script("detect_mask_video.py", "--web", "127.0.0.1:8080", cwd=tmp_path)
    assert result.returncode == 2 and "--config" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.toml"]


def test_a_taken_port_stops_the_service_before_it_writes_anything(tmp_path, clip):
    with taken_port("127.0.0.1") as port:
        site = tmp_path / "site.toml"
        site.write_text(f"[service]\nweb = '127.0.0.1:{port}'\nevents = 'events.jsonl'\n"
                        f"[[camera]]\nname = 'a'\nsource = '{clip}'\n")
        result = run_script("detect_mask_video.py", "--config", site, cwd=tmp_path)
    assert_one_line_error(result, f"cannot serve the web page on 127.0.0.1:{port}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.toml"]


def test_sessions_expire_and_the_login_never_leads_elsewhere():
    import asyncio

    sessions = Sessions("secret", hours=1)
    token = asyncio.run(sessions.log_in("secret"))
    assert sessions.valid(token) and not sessions.valid("made-up") and not sessions.valid(None)
    sessions._tokens[token] = time.time() - 1  # its hour is over
    assert not sessions.valid(token)
    assert asyncio.run(sessions.log_in("Secret")) is None
    assert [local_path(p) for p in ("/events?kind=alert", "//elsewhere.example", "https://x.example/", "/\\x")] == \
        ["/events?kind=alert", "/", "/", "/"]


def test_a_camera_draws_live_pictures_only_while_someone_watches(clip):
    """run_camera on a real clip: no picture while nobody watches, then some once someone does."""
    code = f"""
import json, sys, time
sys.path.insert(0, {str(ROOT)!r})
from mask_detector.live import LiveSettings
from mask_detector.service.camera import run_camera
messages, asked = [], []
def watched_until():  # asked at each frame due a picture: nobody watches for the first 20 frames
    asked.append(1)
    if len(asked) == 20:
        messages.append(("watched", None, None))
    return time.time() + 60 if len(asked) >= 20 else 0.0
class Pictures:
    def put(self, jpeg):
        messages.append(("picture", None, jpeg))
run_camera(LiveSettings(source={str(clip)!r}, name="c"), messages.append, watched_until=watched_until,
           picture_fps=1000, picture=Pictures())
kinds = [kind for kind, *_ in messages]
print(json.dumps([kinds.index("watched") if "watched" in kinds else -1,
                  [i for i, kind in enumerate(kinds) if kind == "picture"]]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            env=script_env())
    assert result.returncode == 0, result.stderr[-2000:]
    watched_at, pictures = json.loads(result.stdout.strip().splitlines()[-1])
    assert watched_at >= 0, "the clip ended before the page was opened"
    assert pictures and min(pictures) > watched_at
