"""The service (detect_mask_video.py --config) with cameras streaming from this machine: how many it carries,
and whether it holds for ten minutes.

    python benchmarks/bench_service.py                      # capacity, then the 10-minute soak
    python benchmarks/bench_service.py --soak-seconds 120   # a shorter soak

Each camera is a looping 640x480 MJPEG stream served over HTTP from this
process at 10 fps: a person without a mask for two seconds, then nobody for
two, so that people come and alerts are raised all along. Mosquitto runs on
a free local port, with a durable subscriber.

Capacity: 1, 2, 3, ... cameras with max_fps 10, each run for --seconds; a
count is carried while every camera processes at least 95 % of the frames
it receives (the rest are dropped, never queued). Every frame received must
be processed or counted as dropped.

Soak: --soak-cameras cameras for --soak-seconds, the broker stopped for 10 s
in the middle. Resident memory (the service and its camera processes) and
open files are read at one minute and at the end; every --events line must
have reached the subscriber; and the time from start to the first state
message on MQTT is measured.
"""

import argparse
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
PREFIX = "bench"


def scene():
    """JPEG frames: two seconds of a person without a mask (a sample photo), two seconds of nobody."""
    person = cv2.resize(cv2.imread(str(ROOT / "samples" / "maksssksksss716.jpg")), (640, 480))
    empty = np.full((480, 640, 3), 90, np.uint8)
    return [cv2.imencode(".jpg", image)[1].tobytes() for image in [person] * 2 * FPS + [empty] * 2 * FPS]


class Streams:
    """MJPEG cameras on 127.0.0.1, each its own port, each frame sent at its time (10 fps), looping."""

    def __init__(self, count, frames):
        self.servers = []
        for _ in range(count):
            class Camera(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    start, number = time.monotonic(), 0
                    while True:
                        jpeg = frames[number % len(frames)]
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


def write_site(folder, urls, broker_port, metrics_port):
    cameras = "".join(f'[[camera]]\nname = "cam{i}"\nsource = "{url}"\n' for i, url in enumerate(urls, 1))
    site = Path(folder) / "site.toml"
    site.write_text(f"""[service]
events = "{folder}/events.jsonl"
metrics_port = {metrics_port}
state_every = 5
[mqtt]
host = "127.0.0.1"
port = {broker_port}
prefix = "{PREFIX}"
[defaults]
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


def capacity(frames, seconds, most):
    """Rows (cameras, slowest camera's fps, frames received, processed, dropped) up to the first that falls short."""
    rows = []
    for count in range(1, most + 1):
        with tempfile.TemporaryDirectory() as folder:
            streams, broker = Streams(count, frames), Broker(folder)
            broker.start()
            metrics_port = free_port()
            service = start_service(write_site(folder, streams.urls(), broker.port, metrics_port), folder)
            try:
                first = wait_for_metrics(metrics_port, count)
                start = time.monotonic()
                time.sleep(seconds)  # the measured stretch: the rates are the counters' differences over it
                last = scrape(metrics_port)
                elapsed = time.monotonic() - start
            finally:
                stop_service(service)
                broker.stop()
                streams.close()
        cams = [f"cam{i}" for i in range(1, count + 1)]

        def grown(name, cam):
            return last[(name, cam)] - first[(name, cam)]

        rates = [grown("mask_detector_frames_total", cam) / elapsed for cam in cams]
        shares = [grown("mask_detector_frames_total", cam) / max(1.0, grown("mask_detector_frames_received_total", cam))
                  for cam in cams]
        received = sum(last[("mask_detector_frames_received_total", cam)] for cam in cams)
        processed = sum(last[("mask_detector_frames_total", cam)] for cam in cams)
        dropped = sum(last[("mask_detector_frames_dropped_total", cam)] for cam in cams)
        rows.append((count, min(rates), min(shares), received, processed, dropped))
        print(f"{count} camera(s): slowest {min(rates):.2f} fps, {min(shares):.1%} of its frames; received "
              f"{received:.0f}, processed {processed:.0f}, dropped {dropped:.0f}", file=sys.stderr, flush=True)
        if min(shares) < 0.95:
            break
    return rows


def memory_and_files(pid):
    """(resident kB, open files) of ``pid`` and its children together."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40, help="measured stretch of each capacity run")
    parser.add_argument("--most-cameras", type=int, default=8)
    parser.add_argument("--soak-cameras", type=int, default=4)
    parser.add_argument("--soak-seconds", type=float, default=600, help="at least 120: a minute, then the broker's stop")
    parser.add_argument("--no-capacity", action="store_true")
    parser.add_argument("--no-soak", action="store_true")
    args = parser.parse_args()
    if shutil.which("mosquitto") is None:
        sys.exit("error: mosquitto is needed (apt-get install mosquitto)")
    frames = scene()
    if not args.no_capacity:
        rows = capacity(frames, args.seconds, args.most_cameras)
        carried = max([count for count, _, share, *_ in rows if share >= 0.95], default=0)
        print(f"capacity, {FPS} fps 640x480 MJPEG cameras, {os.cpu_count()} cores, {args.seconds:g} s each")
        print("| cameras | slowest camera: fps, share of its frames processed | frames received | processed | "
              "dropped | unaccounted |")
        print("|---|---|---|---|---|---|")
        for count, slowest, share, received, processed, dropped in rows:
            print(f"| {count} | {slowest:.2f}, {share:.1%} | {received:.0f} | {processed:.0f} | {dropped:.0f} | "
                  f"{received - processed - dropped:.0f} |")
        print(f"carried at {FPS} fps each: {carried} camera(s), {carried / os.cpu_count():.1f} per core", flush=True)
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
