"""What an alert keeps as evidence: a snapshot of the face, and a clip of the seconds before and after it.

Snapshots and clips follow the run's --privacy mode (privacy.py), and are
recorded in their folder so that --keep-days deletes them, and only them.

For clips, recent frames wait in a buffer bounded by time (``before`` seconds) and by
count. An alert starts a clip with what the buffer holds; the frames of the
next ``after`` seconds are added, then the clip is written on a thread of its
own, so the live loop never waits for an encoder. Frames are kept as JPEG
bytes, which holds memory to some 50 kB a 640x480 frame.

Each clip is drawn like the annotated video: boxes and labels; it is an
.mp4 in H.264 (video.VideoOutput), which a web browser plays. With the
faces hidden (privacy.hides_faces), every face is pixelated; the flagged
person's too, unless ``evidence_faces``. Beside each clip, ``<clip>.json``
tells the camera, the person, the alert's time and every frame's time.
"""

import json
import secrets
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mask_detector import display
from mask_detector.boxes import grown
from mask_detector.errors import UserError
from mask_detector.files import safe_name, write_bytes_atomically, write_image
from mask_detector.privacy import OwnFiles, hides_faces, pixelate
from mask_detector.video import VideoOutput

BEFORE_SECONDS, AFTER_SECONDS = 5.0, 5.0
# The buffer never holds more frames than this, whatever the source's frame rate (60 fps for 5 s).
MOST_BUFFERED_FRAMES = 300
JPEG_QUALITY = 90
CLIP_FPS = 25.0  # clips are written at the source's pace (VideoOutput), at this frame rate when it has none


@dataclass
class _Clip:
    path: Path
    track_id: int
    alert_time: float
    until: float
    frames: list = field(default_factory=list)  # (time, JPEG bytes, FaceResults, doubtful faces' boxes)


def evidence_path(folder, camera, track_id, suffix, label=None):
    """A new file's path in ``folder`` for the evidence of person ``track_id``, one no file has yet:
    ``<camera>_<date>-<time>_person<id>[_<label>]_<unique><suffix>``.

    Track ids start again with every run, and the clock's second is shared by two cameras writing into one
    folder: the random part keeps every name apart, and a name taken is never written over.
    """
    stem = f"{safe_name(camera)}_{time.strftime('%Y%m%d-%H%M%S', time.localtime())}_person{track_id:05d}"
    stem += f"_{label}" if label else ""
    while True:
        path = Path(folder) / f"{stem}_{secrets.token_hex(3)}{suffix}"
        if not path.exists() and not path.with_suffix(".json").exists():
            return path


class EvidenceClips:
    """Clips of ``before`` + ``after`` seconds around each alert, written whole into ``folder``.

    ``camera`` names the clips; ``privacy`` is the run's --privacy mode;
    ``own_files`` (privacy.OwnFiles) records each clip written, for retention.
    """

    def __init__(self, folder, camera, before=BEFORE_SECONDS, after=AFTER_SECONDS, privacy="off",
                 evidence_faces=False, own_files=None, fps=CLIP_FPS):
        self.folder = Path(folder)
        self.camera = safe_name(camera)
        self.before, self.after = before, after
        self.hide = hides_faces(privacy)
        self.evidence_faces = evidence_faces
        self.own_files = own_files
        self.fps = fps
        self.recent = deque(maxlen=MOST_BUFFERED_FRAMES)
        self.filling = []  # clips waiting for their after-seconds
        self.written = []  # paths of the clips written whole
        self._writers = []  # threads writing clips

    def start(self, track_id, alert_time):
        """A clip for the alert of person ``track_id`` at ``alert_time`` (frame time); the path it will have."""
        path = evidence_path(self.folder, self.camera, track_id, ".mp4")
        clip = _Clip(path, track_id, alert_time, alert_time + self.after, list(self.recent))
        self.filling.append(clip)
        return path

    def add(self, frame, faces, doubtful=()):
        """The frame just processed (before anything is drawn on it), its FaceResults, its doubtful faces' boxes."""
        ok, encoded = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return
        entry = (frame.time, encoded.tobytes(), faces, list(doubtful))
        self.recent.append(entry)
        while self.recent and self.recent[0][0] < frame.time - self.before:
            self.recent.popleft()
        for clip in list(self.filling):
            clip.frames.append(entry)
            if frame.time >= clip.until:
                self._write(clip)

    def _write(self, clip):
        self.filling.remove(clip)
        self._writers = [thread for thread in self._writers if thread.is_alive()]
        thread = threading.Thread(target=self._write_clip, args=(clip,), name=f"clip {clip.path.name}")
        thread.start()
        self._writers.append(thread)

    def _write_clip(self, clip):
        try:
            output = VideoOutput(clip.path, self.fps)
            for seconds, encoded, faces, doubtful in clip.frames:
                image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
                if self.hide:
                    flagged = [face.box for face in faces if face.track_id == clip.track_id]
                    pixelate(image, doubtful + [face.box for face in faces],
                             flagged[0] if self.evidence_faces and flagged else None)
                output.write(display.draw_results(image, faces), seconds)
            output.close()
            sidecar = {"camera": self.camera, "track_id": clip.track_id, "alert_time": round(clip.alert_time, 3),
                       "frame_times": [round(seconds, 3) for seconds, *_ in clip.frames]}
            write_bytes_atomically((json.dumps(sidecar) + "\n").encode(), clip.path.with_suffix(".json"))
        except UserError as error:  # on its own thread: told, and the run goes on
            print(f"warning: evidence clip {clip.path.name} not written: {error}", file=sys.stderr)
            return
        if self.own_files:
            self.own_files.add(clip.path)
            self.own_files.add(clip.path.with_suffix(".json"))
        self.written.append(clip.path)

    def close(self):
        """At the end of the video: the clips still filling are written with what came, and all are waited for."""
        for clip in list(self.filling):
            self._write(clip)
        for thread in self._writers:
            thread.join()


class Evidence:
    """An alert's snapshot (in ``snapshots``) and clip (an EvidenceClips, or None), as ``privacy`` allows.

    With faces hidden, every face in a snapshot is pixelated, the flagged
    person's too unless ``evidence_faces``. ``keep_days`` (None: for ever)
    is how long the files written are kept (privacy.OwnFiles).
    """

    def __init__(self, snapshots=None, clips=None, privacy="off", evidence_faces=False, keep_days=None,
                 camera="camera"):
        self.camera = camera  # names the snapshots
        self.snapshots = Path(snapshots) if snapshots else None
        self.clips = clips
        self.hide = hides_faces(privacy)
        self.evidence_faces = evidence_faces
        folders = {self.snapshots, clips.folder if clips else None} - {None}
        self.own_files = {folder: OwnFiles(folder, keep_days) for folder in folders}
        if clips:
            clips.own_files = self.own_files[clips.folder]

    def on_alert(self, track, frame, boxes):
        """The evidence of an alert for ``track`` in ``frame`` (whose faces are ``boxes``): event fields."""
        fields = {}
        if self.snapshots:
            fields["snapshot"] = str(self._snapshot(track, frame, boxes))
        if self.clips:
            fields["clip"] = str(self.clips.start(track.track_id, frame.time))
        return fields

    def _snapshot(self, track, frame, boxes):
        """The face with a margin around it, saved as a JPEG."""
        height, width = frame.image.shape[:2]
        left, top, right, bottom = grown(track.box, 0.25, width, height)
        image = frame.image
        if self.hide:
            image = pixelate(image.copy(), boxes, track.box if self.evidence_faces else None)
        path = evidence_path(self.snapshots, self.camera, track.track_id, ".jpg", track.vote.label)
        write_image(path, image[top:bottom, left:right])
        self.own_files[self.snapshots].add(path)
        return path

    def add(self, frame, faces, doubtful=()):
        """Each frame processed, before anything is drawn on it, with its FaceResults and doubtful faces."""
        if self.clips:
            self.clips.add(frame, faces, doubtful)

    def sweep_when_due(self):
        """Delete the files past their days, at the start and once an hour."""
        for own_files in self.own_files.values():
            own_files.sweep_when_due()

    def close(self):
        if self.clips:
            self.clips.close()
