"""mask_detector/evidence.py: the clip of the seconds around an alert, through the live script, and its buffer."""

import json
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
        assert clip.name.startswith("door_") and clip.name.endswith(f"_person{alert['track_id']:05d}.mp4")
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
