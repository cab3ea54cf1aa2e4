"""mask_detector/people.py: who counts as a person, one alert each, the cooldown, its evidence and the alert command."""

import json
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mask_detector.boxes import grown
from mask_detector.counts import PeopleCounts
from mask_detector.evidence import Evidence
from mask_detector.files import JsonLines
from mask_detector.judging import Judging
from mask_detector.labels import THREE_CLASS_NAMES
from mask_detector.people import AlertCommand, People
from mask_detector.tracking import FaceTracker
from mask_detector.video import Frame
from support.scripts import group_members, wait_until

NO_MASK = [0.03, 0.95, 0.02]
MASK = [0.95, 0.03, 0.02]
FPS = 10


def box_at(x, y, size=120):
    return [x, y, x + size, y + size]


class Scene:
    """Drives People as a live run does (track, vote, update, left), with the faces given instead of detected."""

    def __init__(self, people, image=None, keep_lost=1.0):
        self.people = people
        self.tracker = FaceTracker(THREE_CLASS_NAMES, keep_lost=keep_lost)
        self.image = np.zeros((480, 640, 3), np.uint8) if image is None else image
        self.index = 0

    def frame(self, faces):
        """One frame at the next tenth of a second; ``faces`` are (box, class probabilities) pairs."""
        now = self.index / FPS
        frame = Frame(self.image, self.index, now)
        tracks, gone = self.tracker.update([box for box, _ in faces], now)
        for track, (box, probabilities) in zip(tracks, faces):
            track.vote.add(probabilities, self.people.judging.weight(box))
        self.people.update(tracks, frame)
        self.people.left(gone)
        self.index += 1
        return tracks

    def frames(self, count, faces=()):
        return [self.frame(faces) for _ in range(count)]

    def until(self, seconds):
        """Empty frames up to ``seconds``: the view is empty meanwhile."""
        while self.index / FPS < seconds - 1e-9:
            self.frame([])

    def end(self):
        self.people.left(self.tracker.finish())
        self.people.finish()


def read_lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_a_track_counts_as_a_person_only_after_person_frames(tmp_path):
    with JsonLines(tmp_path / "events.jsonl") as events:
        people = People(THREE_CLASS_NAMES, person_frames=5, events=events)
        scene = Scene(people)
        scene.frames(2, [(box_at(400, 100), MASK)])  # a false detection that flickers for two frames
        scene.until(1.5)
        for _ in range(4):
            scene.frame([(box_at(100, 100), MASK)])
            assert people.counts().total == 0
        tracks = scene.frame([(box_at(100, 100), MASK)])
        assert tracks[0].track_id in people.people  # a person now, counted when they leave
        scene.end()
        assert people.counts() == PeopleCounts(mask=1)
    person_events = [e for e in read_lines(tmp_path / "events.jsonl") if e["event"] == "person"]
    # The flicker left without an event: only the person did.
    assert [(e["track_id"], e["label"], e["frames"]) for e in person_events] == [(tracks[0].track_id, "mask", 5)]
    assert people.alerts == []


def test_a_track_counts_as_a_person_only_after_person_seconds_in_view_too():
    people = People(THREE_CLASS_NAMES, person_frames=5, person_seconds=1.0)
    scene = Scene(people)
    scene.frames(8, [(box_at(400, 100), MASK)])  # a glimpse: eight frames, 0.7 s
    scene.until(2.0)
    assert people.counts().total == 0 and not people.people
    tracks = scene.frames(10, [(box_at(100, 100), NO_MASK)])
    assert [track[0].track_id in people.people for track in tracks] == [False] * 10  # in view for 0.9 s
    assert people.alerts == []  # nor was the glimpse's or this one's label an alert yet
    scene.frame([(box_at(100, 100), NO_MASK)])  # 1.0 s
    assert tracks[0][0].track_id in people.people and len(people.alerts) == 1
    scene.end()
    assert people.counts() == PeopleCounts(no_mask=1)


def test_a_person_is_counted_in_each_count_zone_their_face_was_seen_in(tmp_path):
    with JsonLines(tmp_path / "events.jsonl") as events:
        people = People(THREE_CLASS_NAMES, person_frames=5, events=events, zones=("entrance", "till"))
        scene = Scene(people)
        tracks = scene.frames(10, [(box_at(100, 100), NO_MASK), (box_at(400, 100), MASK)])
        tracks[0][0].zones |= {"entrance"}  # as the live run notes them, frame by frame
        tracks[0][1].zones |= {"entrance", "till"}
        scene.end()
    assert people.zone_counts() == {"entrance": PeopleCounts(mask=1, no_mask=1), "till": PeopleCounts(mask=1)}
    persons = sorted((e for e in read_lines(tmp_path / "events.jsonl") if e["event"] == "person"),
                     key=lambda e: e["track_id"])
    assert [e["zones"] for e in persons] == [["entrance"], ["entrance", "till"]]
    assert People(THREE_CLASS_NAMES, zones=("entrance",)).zone_counts() == {"entrance": PeopleCounts()}


def test_a_person_without_a_mask_raises_exactly_one_alert(tmp_path):
    with JsonLines(tmp_path / "events.jsonl") as events:
        people = People(THREE_CLASS_NAMES, person_frames=5, events=events)
        scene = Scene(people)
        scene.frames(30, [(box_at(100, 100), NO_MASK), (box_at(400, 120), MASK)])
        scene.end()
    lines = read_lines(tmp_path / "events.jsonl")
    alerts = [e for e in lines if e["event"] == "alert"]
    # Raised as soon as the track is a person (frame 5, index 4) and its vote decided.
    assert alerts == [{"event": "alert", "track_id": 1, "label": "no_mask", "time": 0.4, "frame": 4,
                       "box": [100, 100, 220, 220]}]
    assert people.alerts == alerts
    persons = sorted((e for e in lines if e["event"] == "person"), key=lambda e: e["track_id"])
    assert [(e["track_id"], e["label"], e["judged"], e["frames"]) for e in persons] == [
        (1, "no_mask", True, 30), (2, "mask", True, 30)]
    assert persons[0]["mask_probability"] < 0.1 and persons[1]["mask_probability"] > 0.9
    assert (persons[0]["first_time"], persons[0]["last_time"]) == (0.0, 2.9)
    assert people.banner_text(0.5) == "ALERT: No mask (person 1)"
    assert people.banner_text(3.5) == ""  # shown for three seconds


@pytest.mark.parametrize("back_at, moved, alerts", [
    (3.5, 0, 1),  # back 1.6 s after it left, where it was: the same person, no second alert
    (5.5, 0, 2),  # back 3.6 s after: past the 3 s cooldown, someone new
    (3.5, 200, 2),  # soon, but far from where the alerted one left: someone else
])
def test_the_cooldown_takes_a_new_track_soon_and_near_an_alerted_one_for_the_same_person(back_at, moved, alerts):
    people = People(THREE_CLASS_NAMES, person_frames=5, cooldown=3.0)
    scene = Scene(people, keep_lost=1.0)
    first = scene.frames(20, [(box_at(100, 100), NO_MASK)])[-1][0]
    assert first.last_time == pytest.approx(1.9)
    scene.until(back_at)
    second = scene.frames(20, [(box_at(100 + moved, 100), NO_MASK)])[-1][0]
    scene.end()
    assert second.track_id != first.track_id and second.first_time == pytest.approx(back_at)
    assert [a["track_id"] for a in people.alerts] == [first.track_id, second.track_id][:alerts]
    assert people.counts().no_mask == 2  # a cooled-down alert still counts the person


def test_a_person_not_sure_enough_raises_no_alert_and_counts_as_not_judged(tmp_path):
    # Violations at 0.9 together, where the model card asks for 0.99.
    unsure = [0.1, 0.85, 0.05]
    with JsonLines(tmp_path / "events.jsonl") as events:
        people = People(THREE_CLASS_NAMES, person_frames=5, events=events, judging=Judging(((14, 0.99),)))
        scene = Scene(people)
        scene.frames(20, [(box_at(100, 100), unsure)])
        scene.end()
    assert people.alerts == []
    assert people.counts() == PeopleCounts(not_judged=1)
    (event,) = read_lines(tmp_path / "events.jsonl")
    assert (event["event"], event["label"], event["judged"]) == ("person", "no_mask", False)


def test_a_face_too_small_to_judge_never_raises_an_alert_however_long_it_is_seen():
    people = People(THREE_CLASS_NAMES, person_frames=5, judging=Judging(((48, 0.5),)))
    scene = Scene(people)
    tracks = scene.frames(60, [(box_at(100, 100, size=30), [0.01, 0.98, 0.01])])
    scene.end()
    assert tracks[-1][0].vote.label == "no_mask"  # the vote is sure; the evidence is too little
    assert people.alerts == []
    assert people.counts().not_judged == 1


def test_an_alert_snapshot_is_a_jpeg_of_the_face_with_a_margin(samples, tmp_path):
    from mask_detector.faces import create_face_detector

    photo = next(p for p in samples if p.name == "maksssksksss716.jpg")  # one face, no mask
    image = cv2.resize(cv2.imread(str(photo)), (640, 480))
    detector = create_face_detector("yunet")
    (face,) = detector.detect(image)
    people = People(THREE_CLASS_NAMES, person_frames=3, evidence=Evidence(snapshots=tmp_path / "snapshots"))
    scene = Scene(people, image=image)
    scene.frames(10, [(list(face.box), NO_MASK)])
    scene.end()
    (alert,) = people.alerts
    path = Path(alert["snapshot"])
    assert path.parent == tmp_path / "snapshots"
    assert re.fullmatch(r"camera_\d{8}-\d{6}_person00001_no_mask_[0-9a-f]{6}\.jpg", path.name), path.name
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, whatever the name says
    snapshot = cv2.imread(str(path))
    left, top, right, bottom = grown(face.box, 0.25, 640, 480)
    expected = image[top:bottom, left:right]
    assert snapshot.shape == expected.shape
    assert np.abs(snapshot.astype(int) - expected).mean() < 4  # the same pixels, give or take JPEG
    # The face is in it, whole, with room around it.
    (again,) = detector.detect(snapshot)
    x1, y1, x2, y2 = again.box
    height, width = snapshot.shape[:2]
    assert x1 > 0.1 * width and y1 > 0.1 * height and x2 < 0.9 * width and y2 < 0.9 * height
    # No partial file left; the record of what was written, for --keep-days, names it.
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [".mask-detector-files.jsonl", path.name]
    assert json.loads((tmp_path / "snapshots" / ".mask-detector-files.jsonl").read_text())["file"] == path.name


def test_the_alert_command_gets_the_event_as_json_on_its_standard_input(tmp_path):
    received = tmp_path / "received.json"
    # Written under another name and renamed when whole, so the test never reads half a line.
    command = f"cat > '{tmp_path}/partial' && mv '{tmp_path}/partial' '{received}'"
    people = People(THREE_CLASS_NAMES, person_frames=3, command=command)
    scene = Scene(people)
    scene.frames(10, [(box_at(100, 100), NO_MASK)])
    assert wait_until(received.exists), "the alert command never wrote what it received"
    scene.end()
    (alert,) = people.alerts
    assert received.read_text() == json.dumps(alert) + "\n"
    assert json.loads(received.read_text())["label"] == "no_mask"


def stderr_shows(capfd, text, limit=30.0):
    """Poll what was written to stderr until it holds ``text``; all of it, to show when it never does."""
    seen = []

    def shown():
        seen.append(capfd.readouterr().err)
        return text in "".join(seen)

    wait_until(shown, limit)
    return "".join(seen)


def test_an_alert_command_past_its_timeout_is_stopped_with_its_children(tmp_path, capfd):
    group_file = tmp_path / "group"
    # The shell and its child both ignore SIGTERM: only the SIGKILL that follows ends them.
    command = f"trap '' TERM; echo $$ > '{group_file}.partial'; mv '{group_file}.partial' '{group_file}'; sleep 600"
    alerts = AlertCommand(command, timeout=1.0)
    start = time.monotonic()
    alerts.run({"event": "alert", "track_id": 7})
    try:
        assert wait_until(group_file.exists), "the command never started"
        group = int(group_file.read_text())
        assert group_members(group), "the command ended by itself"
        assert wait_until(lambda: not group_members(group)), "the command outlived its timeout"
        seconds = time.monotonic() - start
        assert 1.0 <= seconds < 15, seconds
        warning = f"warning: alert command stopped after its --alert-timeout of 1 s: {command}"
        err = stderr_shows(capfd, warning, limit=10)
        assert err.count(warning) == 1, err
    finally:
        alerts.stop()


def test_a_failing_alert_command_is_warned_about_as_it_ends_and_only_once(capfd):
    alerts = AlertCommand("exit 3", timeout=30)
    alerts.run({"event": "alert"})
    warning = "warning: alert command exited with status 3: exit 3"
    err = stderr_shows(capfd, warning)
    assert warning in err, err
    alerts.stop()
    err += capfd.readouterr().err
    assert err.count("exit 3") == 1, err  # reaped once: the end has nothing more to say about it


def test_commands_still_running_at_the_end_are_stopped_together(tmp_path, capfd):
    started = tmp_path / "started"
    started.mkdir()
    alerts = AlertCommand(f"touch '{started}/'$$; exec sleep 600", timeout=600)
    for track_id in (1, 2):
        alerts.run({"event": "alert", "track_id": track_id})
    assert wait_until(lambda: len(os.listdir(started)) == 2), "the commands never started"
    groups = [int(name) for name in os.listdir(started)]
    start = time.monotonic()
    alerts.stop()
    # Both get the grace period at once, not one after the other.
    assert time.monotonic() - start < AlertCommand.EXIT_GRACE_SECONDS + AlertCommand.KILL_AFTER_SECONDS + 3
    assert wait_until(lambda: not any(group_members(g) for g in groups)), "a command outlived the end"
    assert "warning: 2 alert commands still running at the end were stopped" in capfd.readouterr().err


def test_counts_only_grow_a_person_is_counted_once_with_their_final_label():
    """Once, people in view were counted by their label so far: a person not judged yet, later judged, made
    the not-judged count go down."""
    people = People(THREE_CLASS_NAMES, person_frames=5, judging=Judging(((14, 0.9),)))
    scene = Scene(people)
    seen = []
    for probabilities in [[0.3, 0.6, 0.1]] * 8 + [[0.01, 0.98, 0.01]] * 12:  # unsure, then sure
        scene.frame([(box_at(100, 100), probabilities)])
        seen.append(people.counts())
    assert all(counts.total == 0 for counts in seen)
    scene.end()
    assert people.counts() == PeopleCounts(no_mask=1)
