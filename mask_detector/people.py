"""People in a live run: who counts as a person, their events, and the alert raised once per person.

A track counts as a person once its face was found in ``person_frames``
frames, so a false detection that flickers for a moment is not a visitor.
A person whose label is a violation (no mask, or a mask worn wrongly) raises
one alert: an event line, a banner in the window, and, if asked, a command
run with the event as JSON on its standard input and a snapshot of the face.
The cooldown keeps one person from raising it twice when their track is
lost and found again under a new id: a new track that starts within
``cooldown`` seconds of an alerted track's end, near where that one was
last seen, is taken for the same person and raises no second alert.
"""

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from mask_detector.files import write_image
from mask_detector.tracking import near

VIOLATIONS = ("no_mask", "incorrect")


class AlertCommand:
    """Runs ``command`` through the shell for each alert, without waiting for it."""

    def __init__(self, command):
        self.command = command
        self._running = []

    def run(self, event):
        # The child's output goes to stderr, so that JSON on stdout stays clean.
        process = subprocess.Popen(self.command, shell=True, stdin=subprocess.PIPE, stdout=sys.stderr)
        data = (json.dumps(event) + "\n").encode()
        # Feeding stdin on a thread: a command that never reads must not stall the video.
        threading.Thread(target=_feed, args=(process, data), daemon=True).start()
        self._running.append(process)

    def wait(self, seconds=10.0):
        """Let the commands finish (at most ``seconds`` each); warn about those that failed."""
        for process in self._running:
            try:
                status = process.wait(seconds)
            except subprocess.TimeoutExpired:
                print(f"warning: alert command still running after {seconds:g} s: {self.command}", file=sys.stderr)
                continue
            if status != 0:
                print(f"warning: alert command exited with status {status}: {self.command}", file=sys.stderr)


def _feed(process, data):
    try:
        process.stdin.write(data)
        process.stdin.close()
    except OSError:
        pass  # the command exited without reading: its own business


class People:
    """Counts people by label, writes their events and raises their alerts."""

    def __init__(self, class_names, person_frames=5, cooldown=3.0, events=None, command=None, snapshots=None):
        self.class_names = tuple(class_names)
        self.person_frames = person_frames
        self.cooldown = cooldown
        self.events = events  # a files.JsonLines, or None
        self.command = AlertCommand(command) if command else None
        self.snapshots = Path(snapshots) if snapshots else None
        self.people = {}  # track_id -> Track, every track that counted as a person
        self.alerts = []  # the alert events raised
        self._alerted_ends = []  # (last time, last box) of alerted tracks that left view
        self.banner = None  # (text, until time) for the window

    def update(self, tracks, frame):
        """After a frame: count new people, raise due alerts."""
        for track in tracks:
            if track.frames >= self.person_frames:
                self.people.setdefault(track.track_id, track)
                if track.vote.label in VIOLATIONS and not track.alerted:
                    self._alert(track, frame)

    def _alert(self, track, frame):
        track.alerted = True
        ends = [box for end, box in self._alerted_ends if 0 <= track.first_time - end <= self.cooldown]
        if ends and near(np.array(ends), track.box[None, :]).any():
            return  # the same person again, most likely, under a new track id
        event = {
            "event": "alert", "track_id": track.track_id, "label": track.vote.label,
            "time": round(frame.time, 3), "frame": frame.index, "box": [int(v) for v in track.box],
        }
        if self.snapshots:
            event["snapshot"] = str(self._snapshot(track, frame))
        if self.events:
            self.events.write(event)
        if self.command:
            self.command.run(event)
        self.alerts.append(event)
        self.banner = (f"ALERT: {describe(track.vote.label)} (person {track.track_id})", frame.time + 3.0)

    def _snapshot(self, track, frame):
        """The face with a margin around it, saved as a JPEG."""
        x1, y1, x2, y2 = track.box
        margin_x, margin_y = 0.25 * (x2 - x1), 0.25 * (y2 - y1)
        height, width = frame.image.shape[:2]
        left, top = max(0, int(x1 - margin_x)), max(0, int(y1 - margin_y))
        right, bottom = min(width, int(x2 + margin_x)), min(height, int(y2 + margin_y))
        path = self.snapshots / f"person{track.track_id:05d}_{track.vote.label}_{frame.time:.1f}s.jpg"
        write_image(path, frame.image[top:bottom, left:right])
        return path

    def left(self, tracks):
        """Tracks that left view: an event line for each that was a person."""
        for track in tracks:
            if track.alerted:
                self._alerted_ends.append((track.last_time, track.box.copy()))
            if track.track_id in self.people and self.events:
                self.events.write(self.person_event(track))

    @staticmethod
    def person_event(track):
        mask = track.vote.probabilities[track.vote.class_names.index("mask")]
        return {
            "event": "person", "track_id": track.track_id, "label": track.vote.label,
            # None for a person the classifier was never asked about: a uniform vote is no answer.
            "mask_probability": round(float(mask), 4) if track.vote.answers else None,
            "first_time": round(track.first_time, 3), "last_time": round(track.last_time, 3),
            "frames": track.frames,
        }

    def counts(self):
        """People seen, and how many of them with each final label."""
        labels = [track.vote.label for track in self.people.values()]
        return {"people": len(labels)} | {f"people_{name}": labels.count(name) for name in ("mask", *VIOLATIONS)}

    def banner_text(self, now):
        if self.banner and now <= self.banner[1]:
            return self.banner[0]
        return ""

    def finish(self):
        if self.command:
            self.command.wait()


def describe(label):
    """A label as a person reads it."""
    return {"mask": "Mask", "no_mask": "No mask", "incorrect": "Mask below nose", None: "..."}[label]
