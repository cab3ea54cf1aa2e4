"""The service (detect_mask_video.py --config) with cameras streaming from this machine: how many it carries,
and whether it holds for ten minutes.

    python benchmarks/bench_service.py                      # the ceiling, then the 10-minute soak
    python benchmarks/bench_service.py --no-soak --scene door --no-motion   # a quiet door, the motion test on and off
    python benchmarks/bench_service.py --no-soak --scene busy --every-frame   # the detector's interval on and off
    python benchmarks/bench_service.py --no-capacity --no-soak --profile --scene half   # one camera's stages
    python benchmarks/bench_service.py --no-soak --cameras 4 6 --web-browsers 2   # what the web page costs

Each camera is a looping 640x480 MJPEG stream served over HTTP from this
process at 10 fps, in one of three scenes (--scene): busy, a person without
a mask all the time; half, a person for two seconds and nobody for two; door,
a person for two seconds in twenty. Mosquitto runs on a free local port, with
a durable subscriber.

Capacity: a count of cameras with max_fps 10 is carried while every camera
processes at least 95 % of the frames it receives over --seconds (the rest
are dropped, never queued; every frame received must be processed or
counted as dropped). The ceiling is found by doubling the count from
--first-cameras until one falls short, then halving the gap. --no-motion
measures with the motion test off too (`motion = false`); --every-frame
with the face detector on every frame while people are followed
(`detect_every = 1`); --web-browsers N with the web page served and N
headless Chromium windows (Debian's chromium and chromium-driver) each
watching a camera's live view. --profile first runs one camera of the
scene in this process, as a service camera runs (one thread, max_fps 10),
and says where its frames' time goes, stage by stage. --cameras measures
the counts given, the setups taking turns at each. Each row gives the
service's CPU time (supervisor and cameras) per frame processed, the
supervisor's own resident memory and a camera process's.

Soak: --soak-cameras cameras for --soak-seconds, the broker stopped for 10 s
in the middle. Resident memory (the service and its camera processes) and
open files are read at one minute and at the end; every --events line must
have reached the subscriber; and the time from start to the first state
message on MQTT is measured.
"""

import argparse
import dataclasses
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

FPS = 10
# A count of cameras is carried while every camera processes at least this share of the frames it receives.
CARRIED = 0.95
PREFIX = "bench"


# Seconds of a person without a mask, then of nobody, in each scene's loop.
SCENES = {"busy": (2, 0), "half": (2, 2), "door": (2, 18)}


def scene(name="half"):
    """JPEG frames of a scene: a person without a mask (a sample photo) for some seconds, then nobody: a room of
    soft colours and a few straight edges, with a camera's noise, in which the face detector finds no one."""
    person = cv2.resize(cv2.imread(str(ROOT / "samples" / "maksssksksss716.jpg")), (640, 480))
    rng = np.random.default_rng(0)
    room = cv2.resize(rng.integers(60, 200, (6, 8, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):  # a door, shelves, a window
        x, y = int(rng.integers(0, 560)), int(rng.integers(0, 400))
        cv2.rectangle(room, (x, y), (x + int(rng.integers(40, 160)), y + int(rng.integers(40, 200))),
                      tuple(int(c) for c in rng.integers(30, 220, 3)), -1)
    there, away = SCENES[name]
    images = [person] * there * FPS + [
        np.clip(room + rng.normal(0, 3, room.shape), 0, 255).astype(np.uint8) for _ in range(away * FPS)]
    return [cv2.imencode(".jpg", image)[1].tobytes() for image in images]


class Streams:
    """MJPEG cameras on 127.0.0.1, each its own port, each frame sent at its time (10 fps), looping; each camera
    starts its loop at a place of its own, so that people come to the cameras at different times, as at a site."""

    def __init__(self, count, frames):
        self.servers = []
        for index in range(count):
            class Camera(http.server.BaseHTTPRequestHandler):
                first = index * len(frames) // count

                def do_GET(self):
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    start, number = time.monotonic(), 0
                    while True:
                        jpeg = frames[(self.first + number) % len(frames)]
                        try:
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                             % len(jpeg) + jpeg + b"\r\n")
                        except OSError:
                            return
                        number += 1
                        time.sleep(max(0.0, start + number / FPS - time.monotonic()))

                def log_message(self, *args):
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Camera)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)

    def urls(self):
        return [f"http://127.0.0.1:{server.server_address[1]}/camera.mjpg" for server in self.servers]

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    def __init__(self, folder):
        import pwd

        self.port = free_port()
        self.config = Path(folder) / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                               f"persistence_location {folder}/\nuser {pwd.getpwuid(os.getuid()).pw_name}\n")
        self.process = None

    def start(self):
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # mosquitto listens within milliseconds; the subscriber retries meanwhile anyway

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


def write_site(folder, urls, broker_port, metrics_port, web_port=None, motion=True, detect_every=None):
    cameras = "".join(f'[[camera]]\nname = "cam{i}"\nsource = "{url}"\n' for i, url in enumerate(urls, 1))
    site = Path(folder) / "site.toml"
    web = f'web = "127.0.0.1:{web_port}"\ndatabase = "{folder}/events.db"\n' if web_port else ""
    site.write_text(f"""[service]
events = "{folder}/events.jsonl"
metrics_port = {metrics_port}
{web}state_every = 5
[mqtt]
host = "127.0.0.1"
port = {broker_port}
prefix = "{PREFIX}"
[defaults]
motion = {str(motion).lower()}
{f"detect_every = {detect_every}" if detect_every else ""}
max_fps = {FPS}
alert_cooldown = 0
reconnect_for = 600
{cameras}""")
    return site


def scrape(port):
    """{(sample name, camera): value} of the per-camera samples of /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(sample.name, sample.labels["camera"]): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if set(sample.labels) == {"camera"}}


def start_service(site, folder):
    return subprocess.Popen([sys.executable, str(ROOT / "detect_mask_video.py"), "--config", str(site)], cwd=folder,
                            stdout=open(Path(folder) / "service.out", "w"), stderr=subprocess.STDOUT)


def stop_service(process):
    process.send_signal(signal.SIGTERM)
    process.wait(120)


def wait_for_metrics(port, cameras, limit=120):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            values = scrape(port)
            if all(values.get(("mask_detector_frames_total", f"cam{i}"), 0) > 0 for i in range(1, cameras + 1)):
                return values
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("error: the service did not start processing within 2 minutes")


def watching(web_port, count, browsers):
    """``browsers`` headless Chromium windows, each on a camera's page (its live view), in an ExitStack."""
    import contextlib

    sys.path.insert(0, str(ROOT / "tests"))
    from support.browser import chromium

    stack = contextlib.ExitStack()
    for number in range(browsers):
        driver = stack.enter_context(chromium(800, 600))
        driver.get(f"http://127.0.0.1:{web_port}/cameras/cam{number % count + 1}")
        deadline = time.monotonic() + 60
        while not driver.execute_script("return document.getElementById('live')?.naturalWidth"):
            if time.monotonic() > deadline:
                sys.exit("error: a browser's live view showed no picture within 60 s")
            time.sleep(0.5)
    return stack


def browser_processes():
    """The process ids of Chromium and its driver."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip().startswith(("chromium", "chrome")):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def cpu_seconds(pids):
    """User and system CPU seconds of ``pids`` so far (those still running)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a capacity run serves: the motion test on or off, the detector's interval, and the web page with
    browsers watching it."""

    motion: bool = True
    detect_every: int | None = None  # None: the default
    browsers: int = 0

    def __str__(self):
        return (f"motion {'on' if self.motion else 'off'}"
                + (f", detect_every {self.detect_every}" if self.detect_every else "")
                + (f", the web page served and {self.browsers} browsers watching live views" if self.browsers else ""))


@dataclasses.dataclass
class Row:
    cameras: int
    slowest_fps: float
    share: float  # the slowest camera's share of the frames it received that it processed
    received: float
    processed: float
    dropped: float
    cpu_ms: float  # the service's CPU time (supervisor and cameras) per frame processed, in the measured stretch
    supervisor_kb: int
    camera_kb: int  # a camera process's resident memory, the mean of them

    @property
    def carried(self):
        return self.share >= CARRIED


def run_count(frames, count, seconds, setup):
    """A Row of ``count`` cameras served as ``setup`` says, measured for ``seconds``."""
    import contextlib

    with tempfile.TemporaryDirectory() as folder:
        streams, broker = Streams(count, frames), Broker(folder)
        broker.start()
        metrics_port, web_port = free_port(), free_port() if setup.browsers else None
        site = write_site(folder, streams.urls(), broker.port, metrics_port, web_port, setup.motion,
                          setup.detect_every)
        service = start_service(site, folder)
        try:
            wait_for_metrics(metrics_port, count)
            with watching(web_port, count, setup.browsers) if setup.browsers else contextlib.nullcontext():
                first, cpu_before = scrape(metrics_port), cpu_seconds(service_processes(service.pid))
                browsers_before = cpu_seconds(browser_processes())
                start = time.monotonic()
                time.sleep(seconds)  # the measured stretch: the rates are the counters' differences over it
                last, cpu = scrape(metrics_port), cpu_seconds(service_processes(service.pid)) - cpu_before
                elapsed = time.monotonic() - start
                supervisor_kb = memory_and_files(service.pid, children=False)[0]
                camera_kb = (memory_and_files(service.pid)[0] - supervisor_kb) // count
                if setup.browsers:
                    used = cpu_seconds(browser_processes()) - browsers_before
                    print(f"  the browsers took {used:.1f} CPU seconds of the {elapsed * os.cpu_count():.0f} the "
                          f"machine had meanwhile", file=sys.stderr, flush=True)
        finally:
            stop_service(service)
            broker.stop()
            streams.close()
    cams = [f"cam{i}" for i in range(1, count + 1)]

    def grown(name, cam):
        return last[(name, cam)] - first[(name, cam)]

    shares = [grown("mask_detector_frames_total", cam) / max(1.0, grown("mask_detector_frames_received_total", cam))
              for cam in cams]
    row = Row(count, min(grown("mask_detector_frames_total", cam) / elapsed for cam in cams), min(shares),
              *(sum(last[(f"mask_detector_{name}_total", cam)] for cam in cams)
                for name in ("frames_received", "frames", "frames_dropped")),
              1000 * cpu / max(1.0, sum(grown("mask_detector_frames_total", cam) for cam in cams)), supervisor_kb,
              camera_kb)
    print(f"{count} camera(s), {setup}: slowest {row.slowest_fps:.2f} fps, {row.share:.1%} of its frames; "
          f"{row.cpu_ms:.1f} ms of CPU a frame; supervisor {supervisor_kb / 1024:.0f} MB, a camera "
          f"{camera_kb / 1024:.0f} MB", file=sys.stderr, flush=True)
    return row


def ceiling(frames, seconds, setup, first=2, most=64):
    """The Rows of the counts tried to find the most cameras ``setup`` carries: doubling from ``first`` until a
    count falls short (or ``most``), then halving the gap between the last carried and the first not."""
    rows = {}

    def carried(count):
        if count not in rows:
            rows[count] = run_count(frames, count, seconds, setup)
        return rows[count].carried

    low, high = 0, None
    count = first
    while count <= most:
        if not carried(count):
            high = count
            break
        low, count = count, count * 2
    if high is None:
        return [rows[count] for count in sorted(rows)]
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if carried(middle) else (low, middle)
    return [rows[count] for count in sorted(rows)]


def counts_in_turn(frames, seconds, counts, setups):
    """{setup: Rows} of each of ``counts`` for every setup, the setups taking turns at each count: compared
    under the same load of the machine."""
    rows = {setup: [] for setup in setups}
    for count in counts:
        for setup in setups:
            rows[setup].append(run_count(frames, count, seconds, setup))
    return rows


def service_processes(pid):
    """The service's process and its children (the cameras)."""
    return [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]


def memory_and_files(pid, children=True):
    """(resident kB, open files) of ``pid`` and its children together (or of ``pid`` alone)."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split() if children]
    resident = files = 0
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
            resident += int(re.search(r"VmRSS:\s+(\d+)", status)[1])
            files += len(os.listdir(f"/proc/{one}/fd"))
        except (OSError, TypeError):
            continue
    return resident, files


def soak(frames, cameras, seconds):
    import paho.mqtt.client as paho

    with tempfile.TemporaryDirectory() as folder:
        streams, broker = Streams(cameras, frames), Broker(folder)
        broker.start()
        received, first_state = [], []
        subscriber = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-subscriber", clean_session=False)
        subscriber.on_connect = lambda client, *rest: client.subscribe(f"{PREFIX}/#", qos=1)

        def keep(client, userdata, message):
            if message.topic.endswith("/events"):
                received.append(json.loads(message.payload))
            elif message.topic.endswith("/state") and not first_state:
                first_state.append(time.monotonic())

        subscriber.on_message = keep
        subscriber.reconnect_delay_set(0.2, 1)
        subscriber.connect("127.0.0.1", broker.port)
        subscriber.loop_start()
        metrics_port = free_port()
        site = write_site(folder, streams.urls(), broker.port, metrics_port)
        started = time.monotonic()
        service = start_service(site, folder)
        try:
            wait_for_metrics(metrics_port, cameras)
            time.sleep(max(0.0, started + 60 - time.monotonic()))
            at_minute = memory_and_files(service.pid)
            time.sleep(max(0.0, started + max(seconds / 2, 65) - time.monotonic()))
            broker.stop()
            time.sleep(10)
            broker.start()
            time.sleep(max(0.0, started + max(seconds, 120) - time.monotonic()))
            at_end = memory_and_files(service.pid)
        finally:
            stop_service(service)
        written = [json.loads(line) for line in Path(folder, "events.jsonl").read_text().splitlines()]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len({json.dumps(e) for e in received}) < len(written):
            time.sleep(0.5)
        arrived = {json.dumps(e, sort_keys=True) for e in received}
        missing = [e for e in written if json.dumps(e, sort_keys=True) not in arrived]
        subscriber.loop_stop()
        broker.stop()
        streams.close()
    return {"cameras": cameras, "seconds": seconds, "memory_kb": (at_minute[0], at_end[0]),
            "open_files": (at_minute[1], at_end[1]), "events": len(written), "missing_on_mqtt": len(missing),
            "first_state_seconds": first_state[0] - started if first_state else None}


def profile_camera(frames, seconds, setup):
    """The LiveCounts of one camera of the scene run in this process for ``seconds``, as a service's camera runs
    (max_fps, one thread), ``setup``'s motion test and interval: where its frames' time goes (LiveCounts.profile)."""
    from mask_detector.live import LiveSettings, new_live_run
    from mask_detector.parallel import use_threads
    from mask_detector.pipeline import load_pipeline
    from mask_detector.video import FrameSource

    use_threads(1)
    streams = Streams(1, frames)
    try:
        settings = LiveSettings(source=streams.urls()[0], max_fps=FPS, motion=setup.motion,
                                **({"detect_every": setup.detect_every} if setup.detect_every else {}))
        pipeline = load_pipeline(settings.pipeline)
        with FrameSource(settings.source, settings.timeout, settings.reconnect_for) as source:
            return new_live_run(settings, pipeline).run(source, max_frames=round(seconds * FPS))
    finally:
        streams.close()


def print_rows(rows, seconds, setup, scene_name):
    carried = max([row.cameras for row in rows if row.carried], default=0)
    print(f"capacity, scene {scene_name}, {setup}: {FPS} fps 640x480 MJPEG cameras, {os.cpu_count()} cores, "
          f"{seconds:g} s each")
    print("| cameras | slowest camera: fps, share of its frames processed | frames received | processed | "
          "dropped | unaccounted | service CPU per frame | supervisor's memory | a camera's memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.cameras} | {row.slowest_fps:.2f}, {row.share:.1%} | {row.received:.0f} | "
              f"{row.processed:.0f} | {row.dropped:.0f} | {row.received - row.processed - row.dropped:.0f} | "
              f"{row.cpu_ms:.1f} ms | {row.supervisor_kb / 1024:.0f} MB | {row.camera_kb / 1024:.0f} MB |")
    print(f"carried at {FPS} fps each: {carried} camera(s), {carried / os.cpu_count():.1f} per core", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40, help="measured stretch of each capacity run")
    parser.add_argument("--scene", choices=sorted(SCENES), default="half",
                        help="busy: a person all the time; half: 2 s of a person, 2 s of nobody; door: 2 s in 20")
    parser.add_argument("--first-cameras", type=int, default=2, help="the first count tried")
    parser.add_argument("--most-cameras", type=int, default=64, help="the most cameras tried")
    parser.add_argument("--cameras", type=int, nargs="+",
                        help="measure these counts only, the setups taking turns at each, instead of the ceiling")
    parser.add_argument("--no-motion", action="store_true", help="also measure with the motion test off")
    parser.add_argument("--every-frame", action="store_true",
                        help="also measure with the face detector on every frame while people are followed "
                        "(detect_every = 1)")
    parser.add_argument("--web-browsers", type=int, default=0,
                        help="also measure with the web page and this many browsers watching live views")
    parser.add_argument("--profile", action="store_true",
                        help="first, one camera of the scene in this process for --seconds, for each setup: where "
                        "its frames' time goes, stage by stage")
    parser.add_argument("--soak-cameras", type=int, default=4)
    parser.add_argument("--soak-seconds", type=float, default=600, help="at least 120: a minute, then the broker's stop")
    parser.add_argument("--no-capacity", action="store_true")
    parser.add_argument("--no-soak", action="store_true")
    args = parser.parse_args()
    if shutil.which("mosquitto") is None:
        sys.exit("error: mosquitto is needed (apt-get install mosquitto)")
    frames = scene(args.scene)
    setups = ([Setup()] + [Setup(motion=False)] * args.no_motion + [Setup(detect_every=1)] * args.every_frame
              + [Setup(browsers=args.web_browsers)] * bool(args.web_browsers))
    if args.profile:
        print(f"one camera, scene {args.scene}, {args.seconds:g} s: ms a frame by stage (decode: the reader "
              f"thread's CPU; the others: the loop's time)")
        for setup in setups:
            if not setup.browsers:  # the one camera runs in this process, with no web page
                print(f"| {setup} | {profile_camera(frames, args.seconds, setup).profile_line()} |", flush=True)
    if not args.no_capacity:
        if args.cameras:
            found = counts_in_turn(frames, args.seconds, args.cameras, setups)
        else:
            found = {setup: ceiling(frames, args.seconds, setup, args.first_cameras, args.most_cameras)
                     for setup in setups}
        for setup, rows in found.items():
            print_rows(rows, args.seconds, setup, args.scene)
    if not args.no_soak:
        result = soak(frames, args.soak_cameras, args.soak_seconds)
        growth = result["memory_kb"][1] / result["memory_kb"][0] - 1
        print(f"soak, {result['cameras']} cameras, {result['seconds']:g} s, broker stopped for 10 s in the middle")
        print("| measure | value |")
        print("|---|---|")
        print(f"| resident memory at 1 min / at the end | {result['memory_kb'][0] / 1024:.0f} MB / "
              f"{result['memory_kb'][1] / 1024:.0f} MB ({growth:+.1%}) |")
        print(f"| open files at 1 min / at the end | {result['open_files'][0]} / {result['open_files'][1]} |")
        print(f"| events written / missing on MQTT | {result['events']} / {result['missing_on_mqtt']} |")
        print(f"| first state message on MQTT after start | {result['first_state_seconds']:.2f} s |")


if __name__ == "__main__":
    main()
