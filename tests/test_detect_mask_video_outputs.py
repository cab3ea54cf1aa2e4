"""detect_mask_video.py's files and alert commands: never over the source, whole when stopped, appended to, reaped."""

import json
import signal
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
from support.video_script import ALERTS, STOPPED, SUMMARY, json_lines, photo_with, summary_of


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
