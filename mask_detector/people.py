"""People in a live run: who counts as a person, their events, and the alert raised once per person.

A track counts as a person once its face was found in ``person_frames``
frames and it has been in view for ``person_seconds``, so a false detection
that flickers for a moment, or a face glimpsed at the edge of a pan, is not a
visitor.
A person whose label is a violation (no mask, or a mask worn wrongly) raises
one alert: an event line, a banner in the window, and, if asked, a command
run with the event as JSON on its standard input, and the evidence asked for
(a snapshot of the face, a clip: evidence.py).
The cooldown keeps one person from raising it twice when their track is
lost and found again under a new id: a new track that starts within
``cooldown`` seconds of an alerted track's end, near where that one was
last seen, is taken for the same person and raises no second alert.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from mask_detector.boxes import near
from mask_detector.counts import PeopleCounts
from mask_detector.judging import Judging
from mask_detector.labels import TEXT, VIOLATIONS


class AlertCommand:
    """Runs ``command`` through the shell for each alert, without waiting for it.

    Each run is a process group of its own (a new session), so that the shell
    and whatever it started can be stopped together, and never keep the
    script's output open after it ended (``... | tail`` would wait for them).
    A watcher thread reaps each run as it ends, and warns at once if it failed;
    a run still going after ``timeout`` seconds is stopped, with a warning.
    ``stop`` ends them all together, when the video ends.
    """

    POLL_SECONDS = 0.1
    # At the end, the runs still going get this long, all together, to finish (less if their timeout is sooner).
    EXIT_GRACE_SECONDS = 5.0
    # Between SIGTERM and SIGKILL for a process group that was told to stop.
    KILL_AFTER_SECONDS = 1.0

    def __init__(self, command, timeout=30.0):
        self.command = command
        self.timeout = timeout
        self._running = {}  # Popen -> monotonic time by which it must have finished
        self._lock = threading.Lock()
        self._watcher = None
        self._stopping = threading.Event()

    def run(self, event):
        # The child's output goes to stderr, so that JSON on stdout stays clean.
        process = subprocess.Popen(self.command, shell=True, stdin=subprocess.PIPE, stdout=sys.stderr,
                                   start_new_session=True)
        data = (json.dumps(event) + "\n").encode()
        # Feeding stdin on a thread: a command that never reads must not stall the video.
        threading.Thread(target=_feed, args=(process, data), daemon=True).start()
        with self._lock:
            self._running[process] = time.monotonic() + self.timeout
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()

    def _watch(self):
        """Reap the runs as they end, warn about failures, stop those past their time limit."""
        while not self._stopping.wait(self.POLL_SECONDS):
            self._reap()
            with self._lock:
                late = [p for p, deadline in self._running.items() if time.monotonic() > deadline]
            if late:
                _stop_groups(late, self.KILL_AFTER_SECONDS)
                for process in late:
                    self._forget(process)
                    print(f"warning: alert command stopped after its --alert-timeout of {self.timeout:g} s: "
                          f"{self.command}", file=sys.stderr)

    def _reap(self):
        with self._lock:
            ended = [p for p in self._running if p.poll() is not None]
        for process in ended:
            self._forget(process)
            if process.returncode != 0:
                print(f"warning: alert command exited with status {process.returncode}: {self.command}",
                      file=sys.stderr)

    def _forget(self, process):
        with self._lock:
            self._running.pop(process, None)

    def stop(self):
        """Give the runs still going a short while to finish, all together, then stop them all together."""
        try:
            with self._lock:
                deadlines = list(self._running.values())
            if deadlines:
                until = min(time.monotonic() + self.EXIT_GRACE_SECONDS, max(deadlines))
                while time.monotonic() < until:
                    self._reap()
                    with self._lock:
                        if not self._running:
                            break
                    time.sleep(self.POLL_SECONDS)
        finally:
            # Stopped even when Ctrl-C cuts the wait short: nothing is left running after the script.
            self._stopping.set()
            if self._watcher is not None:
                self._watcher.join(timeout=5)
            self._reap()
            with self._lock:
                left = list(self._running)
                self._running.clear()
            if left:
                _stop_groups(left, self.KILL_AFTER_SECONDS)
                print(f"warning: {len(left)} alert command{'s' if len(left) > 1 else ''} still running at the "
                      f"end {'were' if len(left) > 1 else 'was'} stopped: {self.command}", file=sys.stderr)


def _stop_groups(processes, kill_after):
    """SIGTERM to the process groups of ``processes`` at once; SIGKILL to what is left after ``kill_after`` s."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + kill_after
    while time.monotonic() < deadline and any(_group_alive(p) for p in processes):
        time.sleep(0.05)
    for process in processes:
        _signal_group(process, signal.SIGKILL)
        try:
            process.wait(kill_after)
        except subprocess.TimeoutExpired:
            pass  # uninterruptible in the kernel for now; SIGKILL ends it when it wakes


def _signal_group(process, number):
    try:
        os.killpg(process.pid, number)  # the group's id is its leader's pid (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass  # the whole group has ended already


def _group_alive(process):
    """Whether any process of ``process``'s group is still there (the leader is reaped as it goes)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _feed(process, data):
    try:
        process.stdin.write(data)
        process.stdin.close()
    except OSError:
        pass  # the command exited without reading: its own business


class People:
    """Counts people by label, writes their events and raises their alerts."""

    def __init__(self, class_names, person_frames=5, cooldown=3.0, events=None, command=None, evidence=None,
                 command_timeout=30.0, judging=Judging(), person_seconds=0.0, zones=()):
        self.class_names = tuple(class_names)
        self.judging = judging  # when a person's label is a flag
        self.person_frames = person_frames
        self.person_seconds = person_seconds
        self.cooldown = cooldown
        self.events = events  # a files.JsonLines, or None
        self.command = AlertCommand(command, command_timeout) if command else None
        self.evidence = evidence  # an evidence.Evidence, or None
        # track_id -> Track of the people in view; those who left are only counted, by final label (None: not
        # judged), so that a service running for months keeps no track of everyone who ever passed.
        self.people = {}
        self._left = PeopleCounts()
        # Count zone -> PeopleCounts of the people who left having been seen in it (zones.py), each zone from zero.
        self._left_in = {name: PeopleCounts() for name in zones}
        self.alerts = []  # the alert events raised
        self._alerted_ends = []  # (last time, last box) of alerted tracks that left view
        self.banner = None  # (text, until time) for the window

    def update(self, tracks, frame, doubtful=()):
        """After a frame: count new people, raise due alerts (``doubtful``: boxes of faces no one labelled)."""
        for track in tracks:
            if self.is_person(track):
                self.people.setdefault(track.track_id, track)
                if track.vote.label in VIOLATIONS and not track.alerted and self.judged(track):
                    self._alert(track, frame, [t.box for t in tracks] + list(doubtful))

    def is_person(self, track):
        """Whether a track has shown enough of its face, long enough, to be a person: once it is, it stays one."""
        return track.track_id in self.people or (
            track.frames >= self.person_frames and track.last_time - track.first_time >= self.person_seconds)

    def judged(self, track):
        """Whether the person's label stands on enough evidence to be a flag."""
        return self.judging.person_judged(track.vote, track.box)

    def _alert(self, track, frame, boxes):
        track.alerted = True
        ends = [box for end, box in self._alerted_ends if 0 <= track.first_time - end <= self.cooldown]
        if ends and near(np.array(ends), track.box[None, :]).any():
            return  # the same person again, most likely, under a new track id
        event = {
            "event": "alert", "track_id": track.track_id, "label": track.vote.label,
            "time": round(frame.time, 3), "frame": frame.index, "box": [int(v) for v in track.box],
        }
        if self.evidence:
            event |= self.evidence.on_alert(track, frame, boxes)
        if self.events:
            self.events.write(event)
        if self.command:
            self.command.run(event)
        self.alerts.append(event)
        self.banner = (f"ALERT: {TEXT[track.vote.label]} (person {track.track_id})", frame.time + 3.0)

    def left(self, tracks):
        """Tracks that left view: an event line for each that was a person."""
        for track in tracks:
            if track.alerted:
                # Only ends within the cooldown can still be taken for a new track's person.
                self._alerted_ends = [(end, box) for end, box in self._alerted_ends
                                      if track.last_time - end <= self.cooldown]
                self._alerted_ends.append((track.last_time, track.box.copy()))
            if track.track_id in self.people:
                if self.events:
                    self.events.write(self.person_event(track))
                del self.people[track.track_id]
                label = track.vote.label if self.judged(track) else None
                self._left.add(label)
                for zone in track.zones:
                    self._left_in.setdefault(zone, PeopleCounts()).add(label)

    def person_event(self, track):
        mask = track.vote.probabilities[track.vote.class_names.index("mask")]
        return {
            "event": "person", "track_id": track.track_id, "label": track.vote.label, "judged": self.judged(track),
            # None for a person the classifier was never asked about: a uniform vote is no answer.
            "mask_probability": round(float(mask), 4) if track.vote.answers else None,
            "first_time": round(track.first_time, 3), "last_time": round(track.last_time, 3),
            "frames": track.frames,
        } | ({"zones": sorted(track.zones)} if track.zones else {})

    def counts(self):
        """The PeopleCounts of the people who left view, by their final label: a person still in view, whose
        label may still change, is counted once they leave (every one of them at the end), so counts only grow."""
        return dataclasses.replace(self._left)

    def zone_counts(self):
        """{count zone: PeopleCounts} of the people who left view having been seen in it, as counts() counts."""
        return {name: dataclasses.replace(counts) for name, counts in self._left_in.items()}

    def banner_text(self, now):
        if self.banner and now <= self.banner[1]:
            return self.banner[0]
        return ""

    def finish(self):
        if self.command:
            self.command.stop()

