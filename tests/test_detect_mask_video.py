"""detect_mask_video.py on video files made from the sample photos: every frame, people tracked and counted, alerts."""

import json
import re

import cv2
import numpy as np
import pytest

from support.media import FRAMES_PER_PHOTO, make_clip
from support.scripts import run_all, run_script
from support.video_script import ALERTS, json_lines, photo_with, summary_of


def test_every_frame_of_a_file_is_processed_and_written(clip, samples, default_model, tmp_path):
    output = tmp_path / "annotated.avi"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--output", output,
                        "--json", tmp_path / "frames.jsonl")
    assert result.returncode == 0, result.stderr
    frames, _, fps = (float(v) for v in summary_of(result).groups()[:3])
    assert frames == len(samples) * FRAMES_PER_PHOTO
    assert fps > 0
    records = json_lines(tmp_path / "frames.jsonl")
    assert [r["frame"] for r in records[:-1]] == list(range(int(frames)))
    assert all(r["faces"] for r in records[:-1])  # every sample photo shows at least one face
    written = cv2.VideoCapture(str(output))
    assert written.isOpened()
    count = 0
    while True:
        ok, frame = written.read()
        if not ok:
            break
        assert frame.shape[:2] == (480, 640)
        count += 1
    assert count == frames


def test_max_frames_stops_early(clip, default_model):
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--max-frames", 5)
    assert result.returncode == 0, result.stderr
    assert summary_of(result).group(1) == "5"


@pytest.fixture(scope="module")
def tracked_run(samples, tmp_path_factory):
    """Three photos, 20 frames each, with --json and --events: people, not frames."""
    folder = tmp_path_factory.mktemp("tracked")
    photos = [photo_with(samples, 6), photo_with(samples, 1), photo_with(samples, 3)]
    clip = make_clip(photos, folder / "three photos.mp4", frames_per_photo=20)
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--json", folder / "frames.jsonl",
                        "--events", folder / "events.jsonl", "--on-alert", f"cat >> '{folder / 'alerts.txt'}'",
                        "--snapshots", folder / "snapshots",
                        # Faces of different photos stand at the same places: no cooldown between them.
                        "--alert-cooldown", 0)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, folder


def test_each_person_keeps_one_track_id_while_in_view(tracked_run):
    _, folder = tracked_run
    frames = json_lines(folder / "frames.jsonl")[:-1]
    assert len(frames) == 60
    for first in (0, 20, 40):  # each photo: its faces keep their ids from frame to frame
        ids = [sorted(face["track_id"] for face in record["faces"]) for record in frames[first:first + 20]]
        assert all(frame_ids == ids[0] for frame_ids in ids), ids
        assert len(set(ids[0])) == len(ids[0])
    # A new photo is new people: no id of one photo comes back in the next.
    segments = [{f["track_id"] for r in frames[first:first + 20] for f in r["faces"]} for first in (0, 20, 40)]
    assert not segments[0] & segments[1] and not segments[1] & segments[2]


def test_labels_are_per_person_and_do_not_flicker(tracked_run):
    _, folder = tracked_run
    frames = json_lines(folder / "frames.jsonl")[:-1]
    labels = {}
    for record in frames:
        for face in record["faces"]:
            assert set(face) == {"box", "detection_score", "label", "mask_probability", "judged", "track_id"}
            assert type(face["judged"]) is bool
            if face["label"] is None:  # not asked about yet (three faces a frame are)
                assert face["mask_probability"] is None and record["frame"] == 0  # six faces at once
                assert face["judged"] is False
                continue
            labels.setdefault(face["track_id"], []).append(face["label"])
            assert 0.0 <= face["mask_probability"] <= 1.0
    for track_id, sequence in labels.items():
        assert set(sequence) <= {"mask", "no_mask"}
        # Decided at the third answer; from then on one label, however each frame looks.
        assert len(set(sequence[2:])) == 1, (track_id, sequence)


def test_people_are_counted_once_in_summary_json_and_events(tracked_run):
    result, folder = tracked_run
    records = json_lines(folder / "frames.jsonl")
    summary = records[-1]["summary"]
    assert set(summary) == {"frames", "seconds", "fps", "people", "people_mask", "people_no_mask", "people_incorrect",
                            "people_not_judged"}
    assert summary["frames"] == 60 and summary["people"] == 6 + 1 + 3
    assert (summary["people_mask"] + summary["people_no_mask"] + summary["people_incorrect"]
            + summary["people_not_judged"] == summary["people"])
    line = summary_of(result)
    assert [int(line.group(i)) for i in (4, 5, 6, 7, 8)] == [
        summary["people"], summary["people_mask"], summary["people_no_mask"], summary["people_incorrect"],
        summary["people_not_judged"]]
    events = json_lines(folder / "events.jsonl")
    people = [e for e in events if e["event"] == "person"]
    assert sorted(e["track_id"] for e in people) == sorted({f["track_id"] for r in records[:-1] for f in r["faces"]})
    assert sum(e["label"] == "no_mask" and e["judged"] for e in people) == summary["people_no_mask"]
    assert sum(not e["judged"] for e in people) == summary["people_not_judged"]
    for event in people:
        assert event["frames"] == 20 and event["last_time"] - event["first_time"] == pytest.approx(1.9)


def test_one_alert_per_person_without_a_mask(tracked_run):
    result, folder = tracked_run
    events = json_lines(folder / "events.jsonl")
    alerts = [e for e in events if e["event"] == "alert"]
    no_mask_people = {e["track_id"] for e in events
                      if e["event"] == "person" and e["label"] == "no_mask" and e["judged"]}
    assert sorted(a["track_id"] for a in alerts) == sorted(no_mask_people)  # each once
    assert int(summary_of(result).group(ALERTS)) == len(alerts)
    # The alert command ran once per alert, with the event on its standard input (the commands
    # run side by side, not one after the other, so their lines come in any order).
    received = [json.loads(line) for line in (folder / "alerts.txt").read_text().splitlines()]
    assert sorted(received, key=lambda e: e["track_id"]) == sorted(alerts, key=lambda e: e["track_id"])
    # The snapshots, and the record of them that --keep-days reads (privacy.OwnFiles).
    snapshots = sorted(p for p in (folder / "snapshots").iterdir() if p.name != ".mask-detector-files.jsonl")
    assert sorted(str(p) for p in snapshots) == sorted(a["snapshot"] for a in alerts)
    assert all(cv2.imread(str(p)) is not None for p in snapshots)
    recorded = [json.loads(line)["file"] for line in (folder / "snapshots" / ".mask-detector-files.jsonl").open()]
    assert sorted(recorded) == sorted(p.name for p in snapshots)


@pytest.mark.parametrize("cooldown, alerts", [(3, 1), (0, 2)])
def test_a_person_found_again_soon_raises_no_second_alert(samples, tmp_path, cooldown, alerts):
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.zeros((480, 640, 3), np.uint8))
    person = photo_with(samples, 1)  # one face, no mask
    # 2 s in view, 2 s gone (longer than a track waits), 2 s in view again at the same place.
    clip = make_clip([person, person, blank, blank, person, person], tmp_path / "back again.mp4",
                     frames_per_photo=10)
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--alert-cooldown", cooldown,
                        "--events", tmp_path / "events.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    events = json_lines(tmp_path / "events.jsonl")
    assert [e["label"] for e in events if e["event"] == "person"] == ["no_mask", "no_mask"]  # two tracks
    assert sum(e["event"] == "alert" for e in events) == alerts


def test_a_face_not_classified_has_no_label_and_a_still_image_is_pointed_to_the_photo_script(samples, tmp_path):
    """Issue 20, case 9: the 4th face of a frame is not asked about; it must not read as `mask`, 0.3333."""
    crowd = photo_with(samples, 6)
    clip = make_clip([crowd], tmp_path / "one frame.mp4", frames_per_photo=1)
    results = run_all({
        "clip": ("detect_mask_video.py", "--source", clip, "--no-display", "--json", tmp_path / "clip.jsonl"),
        "photo": ("detect_mask_video.py", "--source", crowd, "--no-display", "--json", tmp_path / "photo.jsonl"),
    })
    for name in ("clip", "photo"):
        assert results[name].returncode == 0, results[name].stderr[-3000:]
    faces = json_lines(tmp_path / "clip.jsonl")[0]["faces"]
    assert len(faces) == 6
    asked = [f for f in faces if f["label"] is not None]
    assert len(asked) == 3  # the classifier is asked about three faces a frame
    assert all(f["mask_probability"] is not None for f in asked)
    for face in faces:
        if face["label"] is None:
            assert face["mask_probability"] is None and set(face) == {
                "box", "detection_score", "label", "mask_probability", "judged", "track_id"}
    assert "detect_mask_image.py" not in results["clip"].stderr  # a one-frame video is a video too, but an mp4
    note = [line for line in results["photo"].stderr.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "is a still image" in note[0] and f"detect_mask_image.py --image {crowd}" in note[0]


def test_an_mp4_output_says_when_browsers_cannot_play_it(samples, tmp_path):
    """H.264 through PyAV, else mp4v, and a note that says so."""
    clip = make_clip(samples[:1], tmp_path / "clip.mp4", size=(320, 240), frames_per_photo=3)
    output = tmp_path / "annotated.mp4"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    written = cv2.VideoCapture(str(output))
    fourcc = int(written.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    written.release()
    part_2 = fourcc in ("mp4v", "fmp4")  # FFmpeg reads mp4v back as FMP4
    assert part_2 or fourcc in ("avc1", "h264"), fourcc
    note = f"note: {output} is MPEG-4 Part 2 video (mp4v), which most web browsers do not play"
    assert (note in result.stderr) == part_2, (fourcc, result.stderr)


def test_a_two_class_model_has_no_incorrect_count(samples, tmp_path):
    """Issue 20 (smaller): a model that knows only mask and no_mask was summed up with "incorrect 0"."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    keras.Model(inputs, keras.layers.Dense(2, "softmax")(x)).save(tmp_path / "two classes.keras")
    clip = make_clip([photo_with(samples, 1)], tmp_path / "clip.mp4", size=(320, 240), frames_per_photo=8)
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--model",
                        tmp_path / "two classes.keras", "--json", tmp_path / "frames.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    line = result.stdout.strip().splitlines()[-1]
    assert re.match(r"^frames 8, .*, people 1 \(mask \d, no_mask \d, not judged \d\), alerts \d$", line), line
    summary = json_lines(tmp_path / "frames.jsonl")[-1]["summary"]
    assert set(summary) == {"frames", "seconds", "fps", "people", "people_mask", "people_no_mask", "people_not_judged"}


def test_zones_black_out_a_private_part_and_leave_out_an_ignore_zone_s_faces(samples, tmp_path):
    clip = make_clip([photo_with(samples, 6)], tmp_path / "six people.mp4", frames_per_photo=20)
    left = "left:private:0,0 0.5,0 0.5,1 0,1"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--zone", left,
                        "--json", tmp_path / "private.jsonl", "--output", tmp_path / "private.avi")
    assert result.returncode == 0, result.stderr[-3000:]
    faces = [face for record in json_lines(tmp_path / "private.jsonl")[:-1] for face in record["faces"]]
    assert faces and all((face["box"][0] + face["box"][2]) / 2 > 320 for face in faces)  # none found in the dark
    written, hidden = cv2.VideoCapture(str(tmp_path / "private.avi")), []
    while True:
        ok, frame = written.read()
        if not ok:
            break
        hidden.append(frame[24:, 4:312].astype(int))  # the zone, but for its outline and its name
    # Black in every frame written (to a few levels of the codec's noise).
    assert len(hidden) == 20 and max(part.max() for part in hidden) <= 8
    # The whole view a poster: the same faces are found, but none is a person, tracked or alerted on.
    everything = "poster:ignore:0,0 1,0 1,1 0,1"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--zone", everything,
                        "--json", tmp_path / "ignored.jsonl", "--events", tmp_path / "events.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary_of(result).group(4) == "0" and summary_of(result).group(ALERTS) == "0"
    assert all(not record["faces"] for record in json_lines(tmp_path / "ignored.jsonl")[:-1])
    assert not (tmp_path / "events.jsonl").exists() or not json_lines(tmp_path / "events.jsonl")
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--zone", "poster:ignore:0,0 1,1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "detect_mask_video.py: error: argument --zones/--zone: zone 'poster': expected 3 points or more, got 2")


def test_a_count_zone_counts_the_people_seen_in_it(samples, tmp_path):
    photos = [photo_with(samples, 6), photo_with(samples, 1), photo_with(samples, 3)]
    clip = make_clip(photos, tmp_path / "three photos.mp4", frames_per_photo=20)
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--alert-cooldown", 0,
                        "--zone", "left:count:0,0 0.5,0 0.5,1 0,1", "--zone", "all:count:0,0 1,0 1,1 0,1",
                        "--json", tmp_path / "frames.jsonl", "--events", tmp_path / "events.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    records = json_lines(tmp_path / "frames.jsonl")
    summary = records[-1]["summary"]
    persons = [e for e in json_lines(tmp_path / "events.jsonl") if e["event"] == "person"]
    # The truth: each person's faces as the JSON lines give them, frame by frame.
    centres = {}
    for record in records[:-1]:
        for face in record["faces"]:
            centres.setdefault(face["track_id"], []).append((face["box"][0] + face["box"][2]) / 2)
    on_the_left = [e for e in persons if min(centres[e["track_id"]]) <= 320]  # a zone holds its edge
    assert 0 < len(on_the_left) < len(persons) == summary["people"]
    people = {key: n for key, n in summary.items() if key.startswith("people")}
    assert {key: n for key, n in summary["zones"]["all"].items() if key.startswith("people")} == people
    assert summary["zones"]["left"]["people"] == len(on_the_left)
    assert summary["zones"]["left"]["people_no_mask"] == sum(e["label"] == "no_mask" and e["judged"] for e in on_the_left)
    assert all(sorted(e["zones"]) == (["all", "left"] if e in on_the_left else ["all"]) for e in persons)


def test_profile_says_where_a_frame_s_time_went(tmp_path, samples, default_model):
    """A still photo for 30 frames: the detector looks on every third once its faces are followed, and each stage's
    time is said."""
    clip = make_clip([photo_with(samples, 3)], tmp_path / "still.mp4", frames_per_photo=30)
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--json", tmp_path / "frames.jsonl",
                        "--profile")
    assert result.returncode == 0, result.stderr
    profile = json_lines(tmp_path / "frames.jsonl")[-1]["summary"]["profile"]
    stages = profile["stages_ms"]
    assert list(stages) == ["decode", "motion", "detect", "carry", "track", "align", "classify", "people", "report",
                            "draw", "write"]
    assert stages["detect"] > 0 and stages["classify"] > 0 and stages["carry"] > 0
    # The stages but decode (done on the reader's thread) are parts of the loop's time.
    summary = json_lines(tmp_path / "frames.jsonl")[-1]["summary"]
    assert 0 < profile["stages_total_ms"] - stages["decode"] <= 1000 * summary["seconds"] / summary["frames"]
    assert profile["detector_share"] == pytest.approx(1 / 3, abs=0.05)
    line = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"ms a frame: decode [\d.]+, motion [\d.]+, .*, write [\d.]+ \(sum [\d.]+; the process's CPU "
                        r"[\d.]+\); the face detector ran on 3\d % of frames", line), line
