"""What the service tests share: scenes, reading the files and /metrics, the service as a background process."""

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import cv2

from support.scripts import ROOT, script_env

# The topic prefix every service test's site file gives: a broker's other topics are never read by mistake.
PREFIX = "site_test"


def photo(samples, name, size=(640, 480)):
    return cv2.resize(cv2.imread(str(next(p for p in samples if p.name == name))), size)


def photo_clip(samples, path, frames=30):
    """A 10 fps clip of sample 716 (one face without a mask), ``frames`` long."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for _ in range(frames):
        writer.write(photo(samples, "maksssksksss716.jpg"))
    writer.release()
    return path


@contextlib.contextmanager
def taken_port(host="0.0.0.0"):
    """A port another program listens on, for as long as the block runs."""
    with socket.socket() as taken:
        taken.bind((host, 0))
        taken.listen()
        yield taken.getsockname()[1]


def lines(path):
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def metrics(port):
    """{(sample name, its labels as sorted pairs): value} of one scrape of /metrics, read by Prometheus' parser."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def sample(scrape, name, **labels):
    return scrape.get((name, tuple(sorted(labels.items()))))


def frames_of(scrape, camera):
    return sample(scrape, "mask_detector_frames_total", camera=camera) or 0.0


class Service:
    """detect_mask_video.py --config, started in the background, its output kept in a file."""

    def __init__(self, site, folder, *flags, env=None):
        self.output = folder / "service.out"
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "detect_mask_video.py"), "--config", str(site), *map(str, flags)],
            cwd=folder, env=env or script_env(), stdout=open(self.output, "w"), stderr=subprocess.STDOUT,
        )

    def said(self):
        return self.output.read_text() if self.output.exists() else ""

    def pid_of(self, camera, nth=1):
        """The process id of the camera's ``nth`` start, once it is said."""
        starts = re.findall(rf"camera {camera}: started \(process (\d+)\)", self.said())
        return int(starts[nth - 1]) if len(starts) >= nth else None

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(120)
