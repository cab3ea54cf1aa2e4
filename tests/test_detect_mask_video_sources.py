"""detect_mask_video.py on awkward sources: ones that do not open, streams that drop or stall, URLs, odd mp4 files."""

import struct
import time

import cv2
import numpy as np
import pytest

from support.media import FRAMES_PER_PHOTO, count_video_frames, make_clip
from support.scripts import assert_one_line_error, run_all, run_script
from support.servers import FileServer, MjpegServer
from support.video_script import ALERTS, STOPPED, SUMMARY, json_lines, photo_with, summary_of


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
