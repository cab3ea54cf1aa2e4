"""mask_detector/video.py: FrameSource on streams that drop frames or whose reads raise; VideoOutput's pace,
its H.264 files that browsers play, and their writing whole or not at all."""

import struct
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from support.media import count_video_frames
from support.scripts import small_disk


class ScriptedCapture:
    """Stands in for cv2.VideoCapture. Steps: an int is a frame of that value, a float that
    many seconds of failed reads, an exception is raised; after the last step reads fail."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.failing_until = None

    def __call__(self, target, *options):  # used as the class: FrameSource calls cv2.VideoCapture(target, ...)
        return self

    def isOpened(self):
        return True

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else -1.0  # a live stream: frame rate, no frame count

    def read(self):
        time.sleep(0.005)
        while self.steps:
            step = self.steps[0]
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, float):
                self.failing_until = self.failing_until or time.monotonic() + step
                if time.monotonic() < self.failing_until:
                    return False, None
                self.failing_until = None
                self.steps.pop(0)
                continue
            self.steps.pop(0)
            return True, np.full((2, 2, 3), step, np.uint8)
        return False, None

    def release(self):
        pass


def frames_of(source, timeout=20):
    """Every frame value the source gives; fails if it never ends."""
    values = []

    def collect():
        values.extend(int(frame.image[0, 0, 0]) for frame in source)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "the frame source never ended"
    return values


def test_stream_that_drops_frames_waits_then_reports(monkeypatch):
    from mask_detector import video

    monkeypatch.setattr(video.cv2, "VideoCapture", ScriptedCapture([1, 2, 3, 0.6, 4, 5]))
    start = time.monotonic()
    with video.FrameSource("rtsp://camera.example/live", timeout=1.5, reconnect_for=0) as source:
        values = frames_of(source)
        assert values[-1] == 5  # frames after a short gap still come through
        assert time.monotonic() - start >= 0.6 + 1.5  # it waited the whole timeout before giving up
        assert source.error == "rtsp://camera.example/live sent no frame for 1.5 s"


def test_source_whose_read_raises_ends_with_an_error(monkeypatch):
    from mask_detector import video

    monkeypatch.setattr(video.cv2, "VideoCapture", ScriptedCapture([1, 2, RuntimeError("device unplugged")]))
    with video.FrameSource("rtsp://camera.example/live") as source:
        assert frames_of(source)[-1] == 2
        assert source.error == "cannot read from rtsp://camera.example/live: device unplugged"


def test_frames_of_a_file_carry_their_index_and_time(tmp_path):
    from mask_detector.video import FrameSource

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48))
    for value in range(10):
        writer.write(np.full((48, 64, 3), value * 20, np.uint8))
    writer.release()
    with FrameSource(path) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(10))
    assert [f.time for f in frames] == pytest.approx([i / 20 for i in range(10)])


def test_video_output_keeps_the_pace_of_the_source(tmp_path):
    """Frames processed at 0, 0.5 and 1.0 s of a 10 fps source play back over 1.1 s, not 0.3 s."""
    from mask_detector.video import VideoOutput

    output = VideoOutput(tmp_path / "paced.avi", fps=10)
    for seconds in (0.0, 0.5, 1.0):
        output.write(np.zeros((48, 64, 3), np.uint8), seconds)
    output.close()
    assert count_video_frames(tmp_path / "paced.avi") == 11
    assert [p.name for p in tmp_path.iterdir()] == ["paced.avi"]  # no temporary file left


def photos_at(samples, size, count):
    return [cv2.resize(cv2.imread(str(photo)), size) for photo in samples[:count]]


def top_level_boxes(path):
    """The types of an MP4 or QuickTime file's top-level boxes, in order: each box is its size (4 bytes, big-endian,
    counting these 8; 1: a 64-bit size follows the type; 0: to the end of the file), its type (4 bytes), its data."""
    data = path.read_bytes()
    types, at = [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
        elif size == 0:
            size = len(data) - at
        assert size >= 8, (types, kind, size)
        types.append(kind.decode("latin-1"))
        at += size
    assert at == len(data), types  # the last box ends where the file does
    return types


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mov"])
def test_an_mp4_is_h264_that_a_browser_plays_as_it_downloads(samples, tmp_path, name):
    """H.264 in yuv420p, what browsers decode, its moov box before its frames (mdat), at the source's pace."""
    import av

    from mask_detector.video import VideoOutput

    photos = photos_at(samples, (640, 480), 5)
    output = VideoOutput(tmp_path / name, fps=10)
    for photo, seconds in zip(photos, (0.0, 0.1, 0.3, 0.6, 1.0)):
        output.write(photo, seconds)
    output.close()
    assert output.codec == "h264"
    path = tmp_path / name
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (stream.width, stream.height, stream.average_rate) == (640, 480, 10)
        assert stream.frames == 11
        assert float(stream.duration * stream.time_base) == pytest.approx(1.1)
        decoded = [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]
    # Each output frame shows the photo of its time: the one given then, or the one before it, repeated.
    nearest = [int(np.argmin([np.abs(image.astype(int) - photo).mean() for photo in photos])) for image in decoded]
    assert nearest == [0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4]


def test_an_odd_sized_frame_writes_a_playable_h264_file(samples, tmp_path):
    """yuv420p holds only even sizes: a 641x481 frame gains a column and a row repeating its edge."""
    import av

    from mask_detector.video import VideoOutput

    photos = photos_at(samples, (641, 481), 3)
    output = VideoOutput(tmp_path / "odd.mp4", fps=25)
    for index, photo in enumerate(photos):
        output.write(photo, index / 25)
    output.close()
    assert output.codec == "h264"
    with av.open(str(tmp_path / "odd.mp4")) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]
    assert [image.shape for image in decoded] == [(482, 642, 3)] * 3
    for image, photo in zip(decoded, photos):
        picture = image[:481, :641].astype(int)
        # In place, not moved by the padding: nearer the photo than to it one pixel across or down (the encoder's
        # loss is some 2 to 6 levels on average); the added column and row repeat the last ones.
        difference = np.abs(picture - photo).mean()
        assert difference < np.abs(picture[:, 1:] - photo[:, :-1]).mean() and difference < 8
        assert difference < np.abs(picture[1:] - photo[:-1]).mean()
        assert np.abs(image[481].astype(int) - image[480]).mean() < 1
        assert np.abs(image[:, 641].astype(int) - image[:, 640]).mean() < 1


def test_an_h264_file_appears_only_whole(samples, tmp_path):
    """Until it is closed, the video is under its temporary name; then under its own, and the temporary one is gone."""
    from mask_detector.files import partial_path
    from mask_detector.video import VideoOutput

    path = tmp_path / "whole.mp4"
    output = VideoOutput(path, fps=25)
    for index, photo in enumerate(photos_at(samples, (320, 240), 6)):
        output.write(photo, index / 25)
    assert not path.exists() and partial_path(path).is_file()
    output.close()
    assert [p.name for p in tmp_path.iterdir()] == ["whole.mp4"]
    assert count_video_frames(path) == 6


def test_an_h264_file_on_a_full_disk_is_reported_and_removed(samples, tmp_path):
    """PyAV's errors while writing are no crash: the file comes out short, and the usual message says why."""
    from mask_detector.errors import UserError
    from mask_detector.video import VideoOutput

    photos = photos_at(samples, (640, 480), 6)
    with small_disk(tmp_path / "disk", size="256k") as disk:
        output = VideoOutput(disk / "full.mp4", fps=25)
        for index in range(100):
            output.write(photos[index % len(photos)], index / 25)
        with pytest.raises(UserError, match=f"^no space left on device writing {disk / 'full.mp4'}$"):
            output.close()
        assert list(disk.iterdir()) == []


def test_without_pyav_an_mp4_is_mp4v_and_one_warning_says_so(samples, tmp_path, monkeypatch, capsys):
    from mask_detector import video

    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    monkeypatch.setattr(video, "_pyav", [])
    for name in ("first.mp4", "second.mov"):
        output = video.VideoOutput(tmp_path / name, fps=10)
        for index, photo in enumerate(photos_at(samples, (320, 240), 3)):
            output.write(photo, index / 10)
        output.close()
        assert output.codec == "mp4v" and count_video_frames(tmp_path / name) == 3
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: no H.264 encoder ("), warnings
    assert warnings[0].endswith(": .mp4 and .mov videos are written as MPEG-4 Part 2 (mp4v), which most web "
                                "browsers do not play")


def test_a_password_in_a_stream_url_is_never_shown():
    from mask_detector.video import redact

    assert redact("rtsp://admin:hunter2@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert redact("http://camera.local/mjpg") == "http://camera.local/mjpg"
    # A password that holds @, and credentials in the query string, are hidden whole.
    assert redact("rtsp://admin:Secret@2024@10.0.0.5/live") == "rtsp://admin:***@10.0.0.5/live"
    assert redact("http://cam.local/video.cgi?user=admin&pwd=Secret&res=hd") == (
        "http://cam.local/video.cgi?user=admin&pwd=***&res=hd")
    assert redact("http://cam.local/snap?Password=x1;channel=1") == "http://cam.local/snap?Password=***;channel=1"
    assert redact("http://cam.local:8080/live@main") == "http://cam.local:8080/live@main"
