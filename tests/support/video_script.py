"""What the tests of detect_mask_video.py share: its summary line, its JSON Lines, and photos of known faces."""

import json
import re

SUMMARY = re.compile(
    r"^frames (\d+), seconds ([\d.]+), fps ([\d.]+), people (\d+) \(mask (\d+), no_mask (\d+), "
    r"incorrect (\d+), not judged (\d+)\), alerts (\d+)(, written .+?)?( \(.+\))?$"
)
ALERTS = 9  # the SUMMARY group that counts the alerts
STOPPED = 11  # the SUMMARY group that says why the run stopped early


def json_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def summary_of(result):
    lines = result.stdout.strip().splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, result.stdout
    return match


def photo_with(samples, faces):
    """The sample photo in which the live script finds exactly ``faces`` faces at 640x480 (they are known)."""
    names = {1: "maksssksksss716.jpg", 3: "maksssksksss244.jpg", 6: "maksssksksss148.jpg"}
    return next(p for p in samples if p.name == names[faces])
