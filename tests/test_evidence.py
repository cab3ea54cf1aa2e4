"""mask_detector/evidence.py: the clip of the seconds around an alert, through the live script, and its buffer."""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from support.media import count_video_frames, make_clip
from support.scripts import run_script

FPS = 10  # make_clip's
SECONDS_PER_PHOTO = 2.0


def with_faces(samples, count):
    names = {1: "maksssksksss716.jpg", 3: "maksssksksss244.jpg", 6: "maksssksksss148.jpg"}
    return next(p for p in samples if p.name == names[count])


@pytest.fixture(scope="module")
def source(samples, tmp_path_factory):
    """Three photos, two seconds each: people without a mask in each, so alerts in each."""
    photos = [with_faces(samples, 6), with_faces(samples, 1), with_faces(samples, 3)]
    return make_clip(photos, tmp_path_factory.mktemp("source") / "door.mp4",
                     frames_per_photo=int(SECONDS_PER_PHOTO * FPS))


def source_frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def run_with_clips(source, folder, *extra):
    result = run_script("detect_mask_video.py", "--source", source, "--no-display", "--events", folder / "events.jsonl",
                        "--clips", folder / "clips", "--clip-before", 1, "--clip-after", 1, "--alert-cooldown", 0,
                        *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    return [event for event in events if event["event"] == "alert"]


def test_a_clip_holds_the_second_before_and_after_its_alert(source, tmp_path):
    alerts = run_with_clips(source, tmp_path)
    assert len(alerts) >= 3
    frames = source_frames(source)
    clips = sorted((tmp_path / "clips").glob("*.mp4"))
    assert sorted(Path(alert["clip"]) for alert in alerts) == clips
    assert not [p for p in (tmp_path / "clips").iterdir() if ".partial" in p.name]  # each written whole
    spanning = 0
    for alert in alerts:
        clip = Path(alert["clip"])
        assert re.fullmatch(rf"door_\d{{8}}-\d{{6}}_person{alert['track_id']:05d}_[0-9a-f]{{6}}\.mp4", clip.name)
        times = json.loads(clip.with_suffix(".json").read_text())["frame_times"]
        assert times == sorted(times) and count_video_frames(clip) == len(times)
        # A second before the alert (or from the start), a second after it (or to the end).
        assert times[0] <= max(0.0, alert["time"] - 1.0) + 1e-6
        assert times[-1] >= min(alert["time"] + 1.0, (len(frames) - 1) / FPS) - 1e-6
        start, at_alert = round(times[0] * FPS), alert["frame"]
        if start // (SECONDS_PER_PHOTO * FPS) == at_alert // (SECONDS_PER_PHOTO * FPS):
            continue
        # Its first frame shows the photo before the alert's: it is the frame of that time, not a later one.
        spanning += 1
        ok, first = cv2.VideoCapture(str(clip)).read()
        assert ok
        difference = [np.abs(first.astype(int) - frames[index]).mean() for index in (start, at_alert)]
        assert difference[0] < difference[1] / 2, difference
    assert spanning >= 1  # some alert came within a second of a new photo


def test_a_blurred_clip_hides_every_face_but_the_flagged_one_when_asked(source, tmp_path, samples):
    from mask_detector.faces import YuNetDetector

    face_detector = YuNetDetector(single_scale=False)
    hidden = run_with_clips(source, tmp_path / "hidden", "--privacy", "blur")
    for alert in hidden:
        capture = cv2.VideoCapture(alert["clip"])
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            assert face_detector.detect(frame) == []
    shown = run_with_clips(source, tmp_path / "shown", "--privacy", "blur", "--evidence-faces")
    assert [(a["track_id"], a["frame"]) for a in shown] == [(a["track_id"], a["frame"]) for a in hidden]
    for alert in shown:
        times = json.loads(Path(alert["clip"]).with_suffix(".json").read_text())["frame_times"]
        capture = cv2.VideoCapture(alert["clip"])
        capture.set(cv2.CAP_PROP_POS_FRAMES, times.index(alert["time"]))
        ok, frame = capture.read()
        assert ok
        # In the alert's frame of its clip, the one face still found is the flagged person's.
        found = face_detector.detect(frame)
        assert len(found) == 1, alert
        (x1, y1, x2, y2), (left, top, right, bottom) = found[0].box, alert["box"]
        assert left < (x1 + x2) / 2 < right and top < (y1 + y2) / 2 < bottom, (found[0].box, alert)


def test_the_buffer_keeps_only_the_seconds_before(tmp_path):
    from mask_detector.evidence import EvidenceClips
    from mask_detector.video import Frame

    clips = EvidenceClips(tmp_path, "camera0", before=0.5, after=0.2)
    image = np.zeros((48, 64, 3), np.uint8)
    for index in range(20):
        clips.add(Frame(image, index, index / 10), [])
    assert [round(entry[0], 1) for entry in clips.recent] == [1.4, 1.5, 1.6, 1.7, 1.8, 1.9]
    path = clips.start(track_id=3, alert_time=1.9)
    for index in range(20, 23):
        clips.add(Frame(image, index, index / 10), [])
    clips.close()
    assert clips.written == [path]
    times = json.loads(path.with_suffix(".json").read_text())["frame_times"]
    assert times == [1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1]


def test_two_runs_into_one_folder_keep_each_alert_s_own_snapshot_and_clip(samples, tmp_path):
    """Once named by track id, label and stream time alone, which start again with every run and every camera:
    a second run (or a second camera) wrote over the first one's snapshot, and both events named one file."""
    clip = make_clip([with_faces(samples, 1)], tmp_path / "door.mp4", frames_per_photo=15)
    alerts = []
    for run in range(2):
        events = tmp_path / f"events{run}.jsonl"
        result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--events", events,
                            "--snapshots", tmp_path / "evidence", "--clips", tmp_path / "evidence",
                            "--clip-before", 0.5, "--clip-after", 0.5)
        assert result.returncode == 0, result.stderr[-3000:]
        alerts += [e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "alert"]
    assert len(alerts) == 2 and alerts[0]["track_id"] == alerts[1]["track_id"]  # the same person, the same id
    for kind in ("snapshot", "clip"):
        paths = [Path(alert[kind]) for alert in alerts]
        assert paths[0] != paths[1] and all(path.is_file() for path in paths), paths
        assert all(path.name.startswith("door_") for path in paths)
    recorded = [json.loads(line)["file"] for line in (tmp_path / "evidence" / ".mask-detector-files.jsonl")
                .read_text().splitlines()]
    assert len(recorded) == len(set(recorded)) == 6  # two snapshots, two clips and their two frame lists
