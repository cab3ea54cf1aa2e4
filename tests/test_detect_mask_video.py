"""detect_mask_video.py on real video files made from the sample photos, real streams, bad sources, a window."""

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from support.media import FRAMES_PER_PHOTO, count_video_frames, make_clip
from support.scripts import (
    ROOT, assert_one_line_error, ctrl_c_at_default, group_members, run_all, run_script, script_env, small_disk,
)
from support.servers import FileServer, MjpegServer
from support.xserver import close_window_when_shown, watch

SUMMARY = re.compile(
    r"^frames (\d+), seconds ([\d.]+), fps ([\d.]+), people (\d+) \(mask (\d+), no_mask (\d+), "
    r"incorrect (\d+), not judged (\d+)\), alerts (\d+)(, written .+?)?( \(.+\))?$"
)
ALERTS = 9  # the SUMMARY group that counts the alerts
STOPPED = 11  # the SUMMARY group that says why the run stopped early


@pytest.fixture(scope="module")
def clip(samples, tmp_path_factory):
    return make_clip(samples, tmp_path_factory.mktemp("video") / "samples clip.mp4")


def json_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def summary_of(result):
    lines = result.stdout.strip().splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, result.stdout
    return match


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


def test_window_without_display_is_a_clear_error(clip, default_model):
    result = run_script("detect_mask_video.py", "--source", clip)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no display found; run with --no-display")


def test_a_display_that_does_not_answer_is_a_clear_error(clip, tmp_path):
    result = run_script("detect_mask_video.py", "--source", clip, "--json", tmp_path / "frames.jsonl",
                        env=script_env(DISPLAY=":99"))
    assert_one_line_error(result, "cannot open a window on display :99; run with --no-display")
    assert not (tmp_path / "frames.jsonl").exists()


@pytest.fixture(scope="module")
def video_runs(samples, default_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    (folder / "garbage.mp4").write_bytes(np.random.default_rng(4).bytes(50000))
    clip = make_clip(samples[:3], folder / "short clip.mp4", size=(320, 240))
    runs = {
        "camera 9": ("--source", 9),
        "garbage file": ("--source", folder / "garbage.mp4"),
        "closed stream": ("--source", "rtsp://127.0.0.1:9/live"),
        "file that ends": ("--source", clip),
    }
    return run_all({name: ("detect_mask_video.py", *args, "--no-display") for name, args in runs.items()})


def test_camera_that_does_not_exist(video_runs):
    assert_one_line_error(video_runs["camera 9"], "cannot open camera 9")


def test_garbage_video_file(video_runs):
    assert_one_line_error(video_runs["garbage file"], "cannot open video file", "garbage.mp4")


def test_stream_that_cannot_be_opened(video_runs):
    assert_one_line_error(video_runs["closed stream"], "cannot open stream rtsp://127.0.0.1:9/live")


def test_video_file_that_ends(video_runs):
    result = video_runs["file that ends"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    summary = SUMMARY.match(result.stdout.strip().splitlines()[-1])
    assert summary and summary.group(1) == "12" and summary.group(STOPPED) is None, result.stdout


def test_video_window_shows_frames_and_closes_at_the_end(display, samples, default_model, tmp_path):
    # Each photo stays 20 frames: a person's box takes its colour once their label is decided and judged
    # (three answers), so with a new photo every 4 frames the coloured frames were few, and a screenshot
    # on a loaded machine could miss all of them.
    clip = make_clip(samples * 2, tmp_path / "clip.mp4", frames_per_photo=20)
    process = subprocess.Popen(
        [os.sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip)],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shot = watch(process, display)
    stdout, stderr = process.communicate(timeout=300)
    assert shot is not None, f"no annotated video window seen; stderr: {stderr[-2000:]}"
    assert process.returncode == 0, stderr
    assert stdout.startswith(f"frames {len(samples) * 2 * 20},")


def test_video_window_closed_by_the_user(display, samples, default_model, tmp_path):
    clip = make_clip(samples * 15, tmp_path / "long clip.mp4", size=(320, 240))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip)],
        cwd=ROOT, env=script_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    status = close_window_when_shown(process, display)
    stdout, stderr = process.communicate(timeout=30)
    assert status == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    summary = SUMMARY.match(stdout.strip().splitlines()[-1])
    assert summary and summary.group(STOPPED) == " (window closed)", stdout
    assert 0 < int(summary.group(1)) < len(samples) * 15 * 4


def photo_with(samples, faces):
    """The sample photo in which the live script finds exactly ``faces`` faces at 640x480 (they are known)."""
    names = {1: "maksssksksss716.jpg", 3: "maksssksksss244.jpg", 6: "maksssksksss148.jpg"}
    return next(p for p in samples if p.name == names[faces])


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


def test_a_stream_that_drops_is_reopened_and_counting_carries_on(samples):
    image = cv2.resize(cv2.imread(str(photo_with(samples, 1))), (640, 480))
    with MjpegServer(image, [40, 40], fps=20, user="viewer", password="s3cret") as server:
        result = run_script("detect_mask_video.py", "--source", server.url, "--no-display",
                            "--timeout", 1, "--reconnect-for", 2, timeout=120)
    assert server.served == [40, 40]  # the script came back after the first connection dropped
    assert result.returncode == 1
    assert "s3cret" not in result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: http://viewer:***@127.0.0.1:") and "sent no frame for" in error, error
    assert "reconnection attempts" in error
    summary = summary_of(result)
    assert int(summary.group(1)) >= 60  # frames from both connections
    # The counts carry on across the drop. The outage lasts about as long as a track waits
    # for its face, so the one person may come back as a second track, but raises one alert.
    assert int(summary.group(4)) in (1, 2) and int(summary.group(6)) == int(summary.group(4))
    assert int(summary.group(ALERTS)) == 1


def test_a_stream_that_never_sends_is_given_up_within_the_timeout(samples):
    image = cv2.imread(str(samples[0]))
    with MjpegServer(image, ["silent"]) as server:
        start = time.monotonic()
        result = run_script("detect_mask_video.py", "--source", server.url, "--no-display", "--timeout", 2,
                            timeout=120)
        seconds = time.monotonic() - start
    assert_one_line_error(result, "cannot open stream http://127.0.0.1:", "within 2 s")
    assert seconds < 20


def test_output_over_the_source_is_refused(clip, tmp_path):
    source = tmp_path / "source.mp4"
    source.write_bytes(clip.read_bytes())
    for option in ("--output", "--json", "--events"):
        result = run_script("detect_mask_video.py", "--source", source, "--no-display", option, source)
        assert_one_line_error(result, f"{source} is the source video")
        assert source.read_bytes() == clip.read_bytes()


@pytest.mark.parametrize("signal_number, status, reason", [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated"),
])
def test_stopping_finishes_the_video_and_prints_the_summary(samples, tmp_path, signal_number, status, reason):
    clip = make_clip(samples * 30, tmp_path / "long.mp4", size=(320, 240))
    output = tmp_path / "annotated.mp4"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip), "--no-display",
         "--output", str(output), "--json", str(tmp_path / "frames.jsonl")],
        cwd=ROOT, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_at_default,
    )
    deadline = time.monotonic() + 120
    frames_file = tmp_path / "frames.jsonl"
    # Signalled only once its JSON lines show it at work: a run stopped before its first frame proves nothing.
    while process.poll() is None and (not frames_file.exists() or frames_file.stat().st_size < 2000):
        assert time.monotonic() < deadline, "no frame was done in time"
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr[-3000:]
    summary = SUMMARY.match(stdout.strip().splitlines()[-1])
    assert summary and summary.group(STOPPED) == f" ({reason})", stdout
    frames = int(summary.group(1))
    assert 0 < frames < len(samples) * 30 * FRAMES_PER_PHOTO
    assert count_video_frames(output) == frames  # a whole, playable file
    assert json_lines(frames_file)[-1]["summary"]["frames"] == frames


def test_a_full_disk_is_reported_and_leaves_no_partial_video(clip, tmp_path):
    with small_disk(tmp_path / "disk", size="256k") as disk:
        output = disk / "annotated.avi"
        result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--output", output)
        assert_one_line_error(result, f"no space left on device writing {output}")
        assert list(disk.iterdir()) == []


def test_a_run_that_cannot_start_leaves_earlier_outputs_as_they_were(samples, tmp_path):
    """Issue 20, case 1: an unopenable source or a missing model touches no --json or --events."""
    earlier_json = "".join(json.dumps({"frame": i, "time": i / 10, "faces": []}) + "\n" for i in range(251))
    earlier_events = "".join(json.dumps({"event": "alert", "track_id": i}) + "\n" for i in range(8))
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(5).bytes(20000))
    (tmp_path / "empty.mp4").write_bytes(b"")
    clip = make_clip(samples[:1], tmp_path / "clip.mp4", size=(320, 240), frames_per_photo=2)
    sources = {"garbage": tmp_path / "garbage.mp4", "empty": tmp_path / "empty.mp4",
               "camera": 7, "closed stream": "rtsp://127.0.0.1:9/live", "missing model": clip}
    runs = {}
    for name, source in sources.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "frames.jsonl").write_text(earlier_json)
        (folder / "events.jsonl").write_text(earlier_events)
        runs[name] = ("detect_mask_video.py", "--source", source, "--no-display", "--json", folder / "frames.jsonl",
                      "--events", folder / "events.jsonl", "--output", folder / "new" / "annotated.mp4",
                      *(("--model", tmp_path / "missing.tflite") if name == "missing model" else ()))
    for name, result in run_all(runs).items():
        assert_one_line_error(result, "missing.tflite" if name == "missing model" else "cannot open")
        folder = tmp_path / name
        assert (folder / "frames.jsonl").read_text() == earlier_json, name
        assert (folder / "events.jsonl").read_text() == earlier_events, name
        # No other file, not even an empty one (the check that --output's folder is writable may make it).
        assert sorted(p.name for p in folder.rglob("*") if not p.is_dir()) == ["events.jsonl", "frames.jsonl"], name


def test_a_run_appends_to_earlier_outputs(samples, tmp_path):
    """Issue 20, case 1: the policy is append; an earlier run's lines, even one cut short, are kept."""
    clip = make_clip([photo_with(samples, 1)], tmp_path / "clip.mp4", size=(320, 240), frames_per_photo=6)
    earlier = json.dumps({"frame": 0, "time": 0.0, "faces": []}) + "\n" + '{"frame": 1, "ti'  # killed mid-line
    (tmp_path / "frames.jsonl").write_text(earlier)
    (tmp_path / "events.jsonl").write_text('{"event": "alert", "track_id": 99}\n')
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--json", tmp_path / "frames.jsonl",
                        "--events", tmp_path / "events.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "frames.jsonl").read_text().splitlines()
    assert lines[:2] == earlier.splitlines()
    records = [json.loads(line) for line in lines[2:]]
    assert [r["frame"] for r in records[:-1]] == list(range(6)) and "summary" in records[-1]
    events = json_lines(tmp_path / "events.jsonl")
    assert events[0] == {"event": "alert", "track_id": 99} and len(events) > 1
    help_text = run_script("detect_mask_video.py", "--help").stdout
    assert "append one JSON object per frame" in help_text


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


def alerting_clip(samples, path):
    """One person without a mask, gone for 2 s, then back: two alerts with --alert-cooldown 0."""
    blank = path.parent / "blank.jpg"
    cv2.imwrite(str(blank), np.zeros((480, 640, 3), np.uint8))
    person = photo_with(samples, 1)
    return make_clip([person, person, blank, blank, person, person], path, frames_per_photo=10)


def test_alert_commands_still_running_are_stopped_together_and_none_survives(samples, tmp_path):
    """Issue 20, case 5: commands that ignore SIGTERM are killed as process groups; a pipe on the output ends."""
    clip = alerting_clip(samples, tmp_path / "two alerts.mp4")
    groups = tmp_path / "groups.txt"
    # Each command writes its process group, ignores SIGTERM (its children inherit that) and hangs.
    command = f"echo $$ >> '{groups}'; trap '' TERM; sleep 99999; echo went on$((1 + 1))"
    start = time.monotonic()
    # Output to pipes: if a command kept them open after the script ended, this would wait (`... | tail`).
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--alert-cooldown", 0,
                        "--on-alert", command, "--alert-timeout", 600, timeout=120)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(summary_of(result).group(ALERTS)) == 2
    assert "warning: 2 alert commands still running at the end were stopped" in result.stderr
    assert "went on2" not in result.stderr  # killed, not let go on
    started = [int(line) for line in groups.read_text().split()]
    assert len(started) == 2
    deadline = time.monotonic() + 30
    while any(group_members(g) for g in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(group_members(g) for g in started)
    # 5 s for both at once, then 1 s between SIGTERM and SIGKILL; one by one, 10 s each, took more than 20 s.
    assert seconds < 20


@pytest.mark.parametrize("command, warning", [
    ("exit 3", "warning: alert command exited with status 3: exit 3"),
    ("sleep 99999", "warning: alert command stopped after its --alert-timeout of 1 s: sleep 99999"),
])
def test_an_alert_command_is_reaped_and_warned_about_while_the_video_goes_on(samples, tmp_path, command, warning):
    """Issue 20, case 5: a failed or timed-out command is told when it happens, not only at exit."""
    clip = make_clip([photo_with(samples, 1)], tmp_path / "long.mp4", size=(320, 240), frames_per_photo=1500)
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip), "--no-display",
             "--on-alert", command, "--alert-timeout", "1"],
            cwd=ROOT, env=script_env(), stdout=subprocess.PIPE, stderr=stderr, text=True,
            preexec_fn=ctrl_c_at_default,
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and warning not in stderr_path.read_text():
            time.sleep(0.1)
        still_running = process.poll() is None
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=60)
    text = stderr_path.read_text()
    assert still_running, f"the video ended before the warning: {text[-2000:]}"
    assert text.count(warning) == 1, text[-2000:]
    assert process.returncode == 130, text[-2000:]
    assert SUMMARY.match(stdout.strip().splitlines()[-1]).group(ALERTS) == "1"


def test_a_url_to_a_finite_video_is_read_once_to_its_end(samples, tmp_path):
    """Issue 20, case 2: over http:// and file:// a video file gives every frame, once, and is never reopened."""
    clip = make_clip(samples, tmp_path / "clip.mp4", size=(320, 240))
    frames = len(samples) * FRAMES_PER_PHOTO
    with FileServer(tmp_path) as server:
        results = run_all({
            url: ("detect_mask_video.py", "--source", url, "--no-display", "--json", tmp_path / f"{name}.jsonl",
                  "--timeout", 5, "--reconnect-for", 30)
            for name, url in (("http", server.url("clip.mp4")), ("file", clip.as_uri()))
        })
        requests = len(server.requests)
    for url, result in results.items():
        assert result.returncode == 0, result.stderr[-3000:]
        assert int(summary_of(result).group(1)) == frames, (url, result.stdout)
    for name in ("http", "file"):
        records = json_lines(tmp_path / f"{name}.jsonl")[:-1]
        assert [r["frame"] for r in records] == list(range(frames))  # none dropped, none twice
        assert [r["time"] for r in records] == pytest.approx([i / 10 for i in range(frames)])
    assert requests <= 2  # opened once (FFmpeg may ask again for the end of the file)


def test_a_video_served_without_range_support_ends_at_once(tmp_path):
    """Issue 20, case 3: a URL that opens and sends no frame is not reopened again and again."""
    rng = np.random.default_rng(6)
    # Noise does not compress: more than FFmpeg reads in one go, so it needs a range request, which fails.
    writer = cv2.VideoWriter(str(tmp_path / "noise.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(40):
        writer.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()
    with FileServer(tmp_path, ranges=False) as server:
        start = time.monotonic()
        result = run_script("detect_mask_video.py", "--source", server.url("noise.mp4"), "--no-display",
                            "--timeout", 2, "--reconnect-for", 30, timeout=120)
        seconds = time.monotonic() - start
        requests = len(server.requests)
    assert_one_line_error(result, f"{server.url('noise.mp4')} gave no frames")
    assert requests <= 3 and seconds < 20, (requests, seconds)


def test_a_live_stream_that_opens_but_sends_no_frame_is_reopened_with_growing_pauses(samples):
    """Issue 20, case 3: every reopening waits, longer each time, also when the stream did open."""
    image = cv2.imread(str(samples[0]))
    # Two connections that send a frame and stall, then refusals (503).
    with MjpegServer(image, [10, "stalled", "stalled"], fps=20) as server:
        result = run_script("detect_mask_video.py", "--source", server.url, "--no-display",
                            "--timeout", 0.5, "--reconnect-for", 3, timeout=120)
        times = list(server.times)
    assert result.returncode == 1 and "sent no frame for" in result.stderr.strip().splitlines()[-1], result.stderr
    # Each reopening waits 0.5, 1, 2, then 4 s first, on top of the 0.5 s open and read timeouts: the
    # stalled ones are asked 1.5 and 2 s apart, and the next wait outlasts --reconnect-for. Without
    # the pauses they were reopened 1 s apart, then the refusals every 0.5 to 2 s: five requests or more.
    assert len(times) == 3, times
    assert times[2] - times[1] >= 1.8, times


def mp4_boxes(data, start, end):
    """(kind, start, size) of the mp4 boxes between start and end."""
    while start < end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        yield kind, start, size
        start += size


def faststart(data):
    """The same mp4 with its index (moov) before its frames (mdat), as cameras and web encoders write it."""
    top = {kind: (start, size) for kind, start, size in mp4_boxes(data, 0, len(data))}
    (moov_start, moov_size), (mdat_start, _) = top[b"moov"], top[b"mdat"]
    moov = bytearray(data[moov_start:moov_start + moov_size])

    def shift_chunk_offsets(start, end):  # the frames move back by the size of moov
        for kind, at, size in mp4_boxes(moov, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                shift_chunk_offsets(at + 8, at + size)
            elif kind == b"stco":
                for entry in range(struct.unpack(">I", moov[at + 12:at + 16])[0]):
                    where = at + 16 + 4 * entry
                    moov[where:where + 4] = struct.pack(">I", struct.unpack(">I", moov[where:where + 4])[0] + moov_size)

    shift_chunk_offsets(8, moov_size)
    assert moov_start > mdat_start  # OpenCV writes moov last
    return data[:mdat_start] + bytes(moov) + data[mdat_start:moov_start]


def test_a_truncated_video_ends_with_a_warning(samples, tmp_path):
    """Issue 20, case 12: an mp4 cut short (its index first, its last frames missing) is said to be."""
    whole = make_clip([photo_with(samples, 1)], tmp_path / "whole.mp4", size=(320, 240), frames_per_photo=50)
    data = faststart(whole.read_bytes())
    (tmp_path / "faststart.mp4").write_bytes(data)
    (tmp_path / "truncated.mp4").write_bytes(data[:len(data) * 6 // 10])
    results = run_all({name: ("detect_mask_video.py", "--source", tmp_path / f"{name}.mp4", "--no-display")
                       for name in ("faststart", "truncated")})
    assert count_video_frames(tmp_path / "faststart.mp4") == 50
    assert results["faststart"].returncode == 0 and "warning" not in results["faststart"].stderr
    result = results["truncated"]
    assert result.returncode == 0, result.stderr[-3000:]
    frames = int(summary_of(result).group(1))
    assert 0 < frames < 50
    assert result.stderr.strip().splitlines()[-1] == (
        f"warning: {tmp_path / 'truncated.mp4'} ended after {frames} of the 50 frames its container announces: "
        "the file is truncated or damaged")


def variable_frame_rate(data, slow_from, slower=3):
    """The same mp4 with each frame from ``slow_from`` on lasting ``slower`` times as long, as phones record.

    Rewrites the time-to-sample table (stts) and the durations (mvhd, tkhd, elst, mdhd, all version 0,
    as OpenCV writes them); the index (moov) is last, so no frame moves.
    """
    containers = (b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl")
    (_, frames, delta), = [struct.unpack(">III", box[12:24]) for box in leaf_boxes(data, containers, b"stts")]
    scale = (slow_from + (frames - slow_from) * slower) / frames

    def change(kind, box):
        if kind == b"stts":
            entries = [(slow_from, delta), (frames - slow_from, slower * delta)]
            body = box[8:12] + struct.pack(">I", len(entries)) + b"".join(struct.pack(">II", *e) for e in entries)
            return struct.pack(">I4s", len(body) + 8, b"stts") + body
        at = {b"mvhd": 24, b"tkhd": 28, b"elst": 16, b"mdhd": 24}.get(kind)
        if at:
            box = bytearray(box)
            box[at:at + 4] = struct.pack(">I", round(struct.unpack(">I", box[at:at + 4])[0] * scale))
        return bytes(box)

    return rewrite_boxes(data, containers, change)


def leaf_boxes(data, containers, wanted):
    for kind, at, size in mp4_boxes(data, 0, len(data)):
        if kind in containers:
            yield from leaf_boxes(data[at + 8:at + size], containers, wanted)
        elif kind == wanted:
            yield data[at:at + size]


def rewrite_boxes(data, containers, change):
    """``data`` with each box that is no container passed through change(kind, box); container sizes follow."""
    out = bytearray()
    for kind, at, size in mp4_boxes(data, 0, len(data)):
        if kind in containers:
            inner = rewrite_boxes(data[at + 8:at + size], containers, change)
            out += struct.pack(">I4s", len(inner) + 8, kind) + inner
        else:
            out += change(kind, data[at:at + size])
    return bytes(out)


def test_times_of_a_variable_frame_rate_video_are_its_frames_own(samples, tmp_path):
    """Issue 20, case 7: 10 frames at 0.1 s, then 10 at 0.3 s; the average (5 fps) put frame 15 at 3.0 s, not 2.5."""
    steady = tmp_path / "steady.mp4"
    writer = cv2.VideoWriter(str(steady), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    photo = cv2.resize(cv2.imread(str(photo_with(samples, 1))), (320, 240))
    for index in range(20):
        frame = photo.copy()
        for bit in range(5):  # the frame's number in binary, white squares for ones, down the right edge
            frame[60 + 24 * bit:84 + 24 * bit, -24:] = 255 * (index >> bit & 1)
        writer.write(frame)
    writer.release()
    clip = tmp_path / "variable.mp4"
    clip.write_bytes(variable_frame_rate(steady.read_bytes(), slow_from=10))
    output = tmp_path / "annotated.mp4"
    result = run_script("detect_mask_video.py", "--source", clip, "--no-display", "--json", tmp_path / "frames.jsonl",
                        "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    records = json_lines(tmp_path / "frames.jsonl")[:-1]
    expected = [i / 10 for i in range(10)] + [1.0 + 0.3 * i for i in range(10)]
    assert [r["time"] for r in records] == pytest.approx(expected, abs=0.002)
    # At the source's pace: the output (5 fps, the average) shows at each of its times the source's
    # frame of that moment. Each frame once, as before, showed frame 5 at 1.0 s instead of frame 10.
    written = cv2.VideoCapture(str(output))
    assert written.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    shown = []
    while True:
        ok, frame = written.read()
        if not ok:
            break
        shown.append(sum((frame[68 + 24 * bit:76 + 24 * bit, -16:-8].mean() > 128) << bit for bit in range(5)))
    written.release()
    # Output frame k (at k / 5 s) shows the source's last frame by then (to the nearest output frame);
    # before, it showed frame k: frame 5, at 0.5 s in the source, at 1.0 s.
    shown = [int(i) for i in shown]
    assert len(shown) in (19, 20) and shown == sorted(shown), shown
    for k, i in enumerate(shown):
        assert expected[i] * 5 <= k + 0.51, shown  # not a frame of later
        assert i == 19 or expected[i + 1] * 5 >= k + 0.49, shown  # nor one the next frame replaced


def test_library_messages_about_sources_that_do_not_open_are_hidden(tmp_path):
    """Issue 20, case 13: FFmpeg's 'moov atom not found' and 'Connection refused', OpenCV's obsensor line."""
    (tmp_path / "cut.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + bytes(3000))  # an mp4 with no index
    runs = {
        "cut": (tmp_path / "cut.mp4", "cannot open video file"),
        "refused": ("http://127.0.0.1:9/clip.mp4", "cannot open stream http://127.0.0.1:9/clip.mp4"),
        "camera": ("99", "cannot open camera 99"),
    }
    results = run_all({name: ("detect_mask_video.py", "--source", source, "--no-display", "--timeout", 3)
                       for name, (source, _) in runs.items()})
    for name, (_, message) in runs.items():
        line = assert_one_line_error(results[name], message)
        assert len(results[name].stderr.strip().splitlines()) == 1, results[name].stderr  # nothing but our line
        assert "within" not in line  # refused at once, not after the 3 s timeout


def test_an_mp4_output_says_when_browsers_cannot_play_it(samples, tmp_path):
    """Issue 20 (smaller): H.264 where the OpenCV build encodes it, else mp4v, and a note that says so."""
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
