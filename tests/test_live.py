"""mask_detector/live.py: LiveRun on a real clip with the shipped pipeline, LiveCounts, and LiveOutputs' refusals."""

import json

import cv2
import numpy as np
import pytest

from support.media import make_clip
from mask_detector.counts import PeopleCounts
from mask_detector.errors import UserError
from mask_detector.boxes import iou_matrix
from mask_detector.files import JsonLines
from mask_detector.live import LiveCounts, LiveOutputs, LiveRun
from mask_detector.people import People
from mask_detector.pipeline import LIVE, MaskPipeline
from mask_detector.video import Frame, FrameSource

FRAMES_PER_PHOTO = 10


def photo(samples, name):
    return next(p for p in samples if p.name == name)


@pytest.fixture(scope="module")
def pipeline():
    return MaskPipeline(LIVE)


@pytest.fixture(scope="module")
def clip(samples, tmp_path_factory):
    """One face without a mask for a second, then three faces (two without, one with) for a second."""
    photos = [photo(samples, "maksssksksss716.jpg"), photo(samples, "maksssksksss244.jpg")]
    return make_clip(photos, tmp_path_factory.mktemp("live") / "clip.mp4", fps=10, frames_per_photo=FRAMES_PER_PHOTO)


def live_run(pipeline, events=None):
    people = People(pipeline.classifier.class_names, person_frames=5, cooldown=0, events=events,
                    judging=pipeline.judging)
    return LiveRun(pipeline, people)


def test_a_still_face_keeps_its_track_id_and_its_label_is_decided_after_three_answers(pipeline, clip):
    run = live_run(pipeline)
    with FrameSource(clip) as source:
        steps = [run.step(frame) for frame in source]
    run.finish()
    assert len(steps) == 2 * FRAMES_PER_PHOTO
    first, second = steps[:FRAMES_PER_PHOTO], steps[FRAMES_PER_PHOTO:]
    assert all(len(faces) == 1 for faces in first) and all(len(faces) == 3 for faces in second)
    assert {faces[0].track_id for faces in first} == {1}
    ids = [sorted(face.track_id for face in faces) for faces in second]
    assert all(frame_ids == ids[0] for frame_ids in ids) and len(set(ids[0])) == 3
    assert 1 not in ids[0]  # another photo, other people
    # The vote decides at the third answer; until then the label is the likeliest so far.
    assert [faces[0].decided for faces in first] == [False, False] + [True] * (FRAMES_PER_PHOTO - 2)
    assert {faces[0].label for faces in first} == {"no_mask"}
    assert first[-1][0].mask_probability < 0.1 and first[-1][0].judged
    # Three faces, three answers a frame: each is asked every frame, so all are decided at the third.
    assert [all(face.decided for face in faces) for faces in second[:3]] == [False, False, True]
    labels = sorted(face.label for face in second[-1])
    assert labels == ["mask", "no_mask", "no_mask"]


def test_with_more_faces_than_answers_per_frame_each_face_is_asked_in_turn(pipeline, samples):
    image = cv2.resize(cv2.imread(str(photo(samples, "maksssksksss244.jpg"))), (640, 480))  # three faces
    run = LiveRun(pipeline, People(pipeline.classifier.class_names, judging=pipeline.judging), classify_per_frame=1)
    first = run.step(Frame(image.copy(), 0, 0.0))
    # One face was asked about; the others show no label rather than one that looks like an answer.
    assert sorted(face.label is None for face in first) == [False, True, True]
    assert all(face.probabilities is None and not face.judged and not face.decided
               for face in first if face.label is None)
    for index in range(1, 9):
        faces = run.step(Frame(image.copy(), index, index / 10))
    answers = sorted(track.vote.answers for track in run.tracker.tracks.values())
    assert answers == [3, 3, 3]  # nine answers shared out, not one face asked nine times
    assert all(face.decided for face in faces)
    run.finish()


def test_run_writes_a_json_line_per_frame_then_the_summary(pipeline, clip, tmp_path):
    results, events = tmp_path / "frames.jsonl", tmp_path / "events.jsonl"
    with JsonLines(results) as lines, JsonLines(events) as event_lines:
        with FrameSource(clip) as source:
            counts = live_run(pipeline, event_lines).run(source, lines)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["frame"] for r in records[:-1]] == list(range(2 * FRAMES_PER_PHOTO))
    assert [r["time"] for r in records[:-1]] == pytest.approx([i / 10 for i in range(2 * FRAMES_PER_PHOTO)])
    for record in records[:-1]:
        for face in record["faces"]:
            assert set(face) == {"box", "detection_score", "label", "mask_probability", "judged", "track_id"}
    assert records[-1] == {"summary": counts.summary()}
    assert counts.frames == 2 * FRAMES_PER_PHOTO and counts.stopped_by == "" and counts.interruption is None
    assert counts.people == PeopleCounts(mask=1, no_mask=3)
    written = [json.loads(line) for line in events.read_text().splitlines()]
    alerts = [e for e in written if e["event"] == "alert"]
    assert counts.alerts == len(alerts) == 3
    assert sorted(e["track_id"] for e in written if e["event"] == "person") == [1, 2, 3, 4]
    assert counts.summary_line().startswith(f"frames 20, seconds {counts.seconds:.2f}, fps ")
    assert counts.summary_line().endswith(
        "people 4 (mask 1, no_mask 3, incorrect 0, not judged 0), alerts 3")


def test_max_frames_stops_the_run_and_the_people_in_view_still_leave(pipeline, clip, tmp_path):
    with JsonLines(tmp_path / "events.jsonl") as events:
        with FrameSource(clip) as source:
            counts = live_run(pipeline, events).run(source, max_frames=6)
    assert counts.frames == 6
    written = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    (person,) = [e for e in written if e["event"] == "person"]
    assert (person["track_id"], person["frames"], person["last_time"]) == (1, 6, 0.5)


def test_counts_of_a_two_class_model_name_no_incorrect():
    people = PeopleCounts(mask=2, no_mask=2, not_judged=1)
    counts = LiveCounts(frames=50, seconds=2.0, people=people, alerts=2, class_names=("mask", "no_mask"))
    assert counts.summary() == {"frames": 50, "seconds": 2.0, "fps": 25.0, "people": 5, "people_mask": 2,
                                "people_no_mask": 2, "people_not_judged": 1}
    assert counts.summary_line() == (
        "frames 50, seconds 2.00, fps 25.0, people 5 (mask 2, no_mask 2, not judged 1), alerts 2")
    three = LiveCounts(frames=0, seconds=0.0, people=people, alerts=0)
    assert three.fps == 0.0 and three.summary()["people_incorrect"] == 0
    assert "(mask 2, no_mask 2, incorrect 0, not judged 1)" in three.summary_line()


@pytest.mark.parametrize("output", ["video", "json_path", "events_path"])
def test_an_output_that_is_the_source_video_is_refused(clip, tmp_path, output):
    before = clip.read_bytes()
    # The same file under another name: a link in another folder.
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    for name in (str(clip), str(link)):
        with pytest.raises(UserError) as refused:
            LiveOutputs(str(clip), **{output: name})
        assert str(refused.value) == f"{name} is the source video; choose another output name"
    assert clip.read_bytes() == before


def test_an_unwritable_output_is_refused_before_anything_is_written(clip, tmp_path):
    in_the_way = tmp_path / "a file"
    in_the_way.write_text("")
    for options in ({"json_path": str(in_the_way / "frames.jsonl")}, {"events_path": str(in_the_way / "e.jsonl")},
                    {"video": str(in_the_way / "out.avi")}, {"snapshots": str(in_the_way / "snapshots")}):
        with pytest.raises(UserError) as refused:
            LiveOutputs(str(clip), **options)
        message = str(refused.value)
        assert "\n" not in message and message.startswith("cannot write to ") and "is a file" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]


def test_outputs_are_opened_only_when_asked_and_appended_to(clip, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"event": "earlier"}\n')
    outputs = LiveOutputs(str(clip), json_path=str(tmp_path / "frames.jsonl"), events_path=str(events))
    assert not (tmp_path / "frames.jsonl").exists()  # a run that never starts creates nothing
    with outputs.open():
        outputs.events.write({"event": "person"})
        assert events.read_text().splitlines()[-1] == '{"event": "person"}'  # on disk at once, for readers
    assert [json.loads(line)["event"] for line in events.read_text().splitlines()] == ["earlier", "person"]
    assert (tmp_path / "frames.jsonl").read_text() == ""


def test_the_window_says_who_is_in_view_as_the_service_does(pipeline, clip):
    """Once, the window counted `no_mask` labels, judged or not, and left `incorrect` out, while the service's
    state counted violations judged as flags: on a crowd, 38 against 4 for the same frames."""
    from mask_detector.judging import Judging

    for judging, flagged in ((pipeline.judging, 2), (Judging(((14, 0.99999),)), 0)):  # no violation sure enough
        people = People(pipeline.classifier.class_names, person_frames=5, cooldown=0, judging=judging)
        run = LiveRun(pipeline, people)
        with FrameSource(clip) as source:
            panels = [run.panel_lines(run.step(frame), fps=10.0) for frame in source]
        assert panels[-1][1] == f"in view: 3 people, {flagged} flagged", judging
        # Totals count each person once, with their final label, when they leave (the first is not gone yet).
        assert panels[-1][2].startswith("total: 0 people")
        run.finish()
        assert run.panel_lines([], fps=10.0)[2].startswith("total: 4 people")


def walking_scene(samples, frames=30, newcomer_at=None):
    """A plain room, a person (the face of maksssksksss716.jpg, 106 px wide) walking across it 8 px a frame, and
    from frame ``newcomer_at`` a second one standing on the right; frames at 10 fps."""
    image = cv2.resize(cv2.imread(str(photo(samples, "maksssksksss716.jpg"))), (640, 480))
    person = cv2.resize(image[100:480, 144:517], None, fx=0.5, fy=0.5)  # the face and the body below it
    room = np.full((480, 640, 3), (150, 160, 170), np.uint8)
    cv2.rectangle(room, (500, 40), (620, 220), (90, 80, 60), -1)  # a door
    rng = np.random.default_rng(0)
    scene = []
    for index in range(frames):
        frame = room.copy()
        x = 40 + 8 * index
        frame[290:290 + person.shape[0], x:x + person.shape[1]] = person
        if newcomer_at is not None and index >= newcomer_at:
            frame[290:290 + person.shape[0], 440:440 + person.shape[1]] = person
        noisy = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
        scene.append(Frame(noisy, index, index / 10))
    return scene


def test_between_two_looks_the_detector_skips_frames_and_the_faces_are_carried(pipeline, samples):
    run = LiveRun(pipeline, People(pipeline.classifier.class_names, judging=pipeline.judging), detect_every=3)
    scene = walking_scene(samples)
    steps = []
    for frame in scene:
        found = [face.box for face in pipeline.face_detector.find(frame.image)[0]]  # what a look would find
        steps.append((run.step(frame), found))
    # Three answers decide; then the person is asked again at each look only.
    (track,) = run.tracker.tracks.values()
    assert track.vote.answers == 3 + sum(1 for index in range(3, len(scene)) if index % 3 == 0)
    run.finish()
    assert all(len(faces) == 1 and len(found) == 1 for faces, found in steps)
    assert len({faces[0].track_id for faces, _ in steps}) == 1
    # The detector ran on a third of the frames; the faces carried between are where it would have found them.
    assert run.looks == len(scene) // 3
    overlaps = iou_matrix(np.array([faces[0].box for faces, _ in steps], float),
                          np.array([found[0] for _, found in steps], float)).diagonal()
    assert overlaps.min() >= 0.8, overlaps.round(2)
    # Decided after three answers as on every frame: an undecided person is asked on frames carried too.
    assert [faces[0].decided for faces, _ in steps[:4]] == [False, False, True, True]
    assert steps[-1][0][0].label == "no_mask"


def test_someone_coming_in_where_no_one_is_followed_is_looked_for_at_once(pipeline, samples):
    scene = walking_scene(samples, frames=12, newcomer_at=7)
    for motion, first_seen in ((True, 7), (False, 9)):  # without the motion test, at the next look
        run = LiveRun(pipeline, People(pipeline.classifier.class_names, judging=pipeline.judging), motion=motion,
                      detect_every=3)
        counts = [len(run.step(frame)) for frame in scene]
        assert counts.index(2) == first_seen, (motion, counts)
        run.finish()
    every = LiveRun(pipeline, People(pipeline.classifier.class_names, judging=pipeline.judging), detect_every=1)
    for frame in scene:
        every.step(frame)
    assert every.looks == len(scene)
