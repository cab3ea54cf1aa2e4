"""Live detection: the loop over a frame source that follows people, counts them and reports.

Each frame: find the faces, link them to tracks, ask the classifier about
at most ``classify_per_frame`` of them (undecided people first, then those
asked longest ago), then draw, write and show. With few faces in view each is
asked every frame; with many, each is asked in turn, so the classifier's cost
per frame stays bounded however crowded the view.
"""

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from mask_detector import display
from mask_detector.counts import PeopleCounts
from mask_detector.errors import Terminated, UserError, interrupts_deferred
from mask_detector.evidence import AFTER_SECONDS, BEFORE_SECONDS, Evidence, EvidenceClips
from mask_detector.faces import Face
from mask_detector.files import JsonLines, check_writable
from mask_detector.labels import TEXT, VIOLATIONS
from mask_detector.motion import MotionDetector
from mask_detector.people import People
from mask_detector.pipeline import LIVE, FaceResult, PipelineSettings, pose_of
from mask_detector.privacy import PRIVACY_MODES, hides_faces, pixelate
from mask_detector.settings import setting
from mask_detector.tracking import CutDetector, FaceCarrier, FaceTracker, looks_of
from mask_detector.zones import ZoneMap, Zones
from mask_detector.video import RECONNECT_SECONDS, TIMEOUT_SECONDS, VideoOutput, camera_name, describe_source


# Frames between two looks of the face detector while everyone in view is followed (LiveSettings.detect_every).
DETECT_EVERY = 3
# A frame's stages, in order: decode (the source's reader thread, CPU), motion (and the private zones blacked out),
# detect (the face detector), carry (faces carried between two looks), track (the cut test and the tracker), align
# (the classifier's crops), classify, people (counts, alerts, evidence), report (JSON lines, whoever watches), draw
# (boxes, panel, privacy's blur), write (the video written, the picture shown or served).
STAGES = ("decode", "motion", "detect", "carry", "track", "align", "classify", "people", "report", "draw", "write")


@dataclass(frozen=True)
class LiveSettings:
    """One camera's live run, as detect_mask_video.py's flags (same names) or a site file's camera set it."""

    source: str = setting("0", "camera index, video file or stream URL", short="-s", environment="also")
    # The camera's name in file names and messages; empty: from the source (video.camera_name).
    # Shown as it is written; files, MQTT topics and Home Assistant's ids take it made safe (files.safe_name).
    name: str = setting("", "the camera's name in messages, file names and MQTT topics", flag=False,
                        pattern=r"(?=.*\w)[^\x00-\x1f\x7f]{1,64}",
                        pattern_text="a name of 1 to 64 characters with a letter or a digit, no control character")
    pipeline: PipelineSettings = field(default_factory=lambda: LIVE)
    on_alert: str | None = setting(None, "run this shell command per alert, event JSON on stdin", str,
                                   metavar="COMMAND")
    alert_timeout: float = setting(30.0, "seconds an --on-alert command may run before it is stopped; at the end, "
                                   "those still running get 5 s more at most, then are all stopped together",
                                   least=0.1)
    snapshots: str | None = setting(None, "save each alerted face here", str, metavar="DIR")
    clips: str | None = setting(None, "save a video of the seconds around each alert here", str, metavar="DIR")
    clip_before: float = setting(BEFORE_SECONDS, "seconds of video before an alert in its clip (kept in memory "
                                 "meanwhile)", least=0)
    clip_after: float = setting(AFTER_SECONDS, "seconds of video after an alert in its clip", least=0)
    privacy: str = setting("off", "off: pictures as they are; blur: every face pixelated in every picture written "
                           "or shown; stats: no picture written at all (refuses --output, --snapshots, --clips)",
                           choices=PRIVACY_MODES)
    evidence_faces: bool = setting(False, "with --privacy blur: leave the alerted person's face clear in their "
                                   "snapshot and clip")
    keep_days: float | None = setting(None, "delete snapshots and clips this script wrote once they are this many "
                                      "days old (at start, then hourly); other files in those folders are never "
                                      "touched", float, least=0)
    person_frames: int = setting(5, "frames a face must be found in to count as a person", least=1)
    # 0.4 s: of the dev clips' counted tracks, those in view for less were mostly glimpses (a face found in a
    # few frames of a pan, a scene's last frames) and people's second tracks; few people were seen only so briefly.
    person_seconds: float = setting(0.4, "seconds a face must be in view, as well, to count as a person: a "
                                    "glimpse is not one", least=0)
    zones: Zones = setting(Zones(), "a part of the view, as NAME:KIND:X,Y X,Y X,Y ... in fractions of the frame "
                           "(0-1), given once per zone: ignore: its faces are no people (a poster, a screen); "
                           "count: its people are counted apart as well; private: blacked out before anything sees "
                           "it", metavar="ZONE", aliases=("--zone",))
    alert_cooldown: float = setting(3.0, "a face found again within this many seconds near an alerted person who "
                                    "left view is taken for that person: no second alert", least=0)
    timeout: float = setting(TIMEOUT_SECONDS, "seconds to wait for a source to open or to send its next frame",
                             least=0.5)
    reconnect_for: float = setting(RECONNECT_SECONDS, "seconds to keep reopening a camera or stream that stopped "
                                   "sending", least=0)
    max_fps: float | None = setting(None, "process at most this many frames a second; the others are dropped, so "
                                    "a camera never lags behind (default: every frame the machine keeps up with)",
                                    float, least=0.1)
    motion: bool = setting(True, "look for faces only while something moves or someone is followed, and every "
                           "--idle-seconds besides: an empty view costs a fraction of a view with people; --no-motion: "
                           "on every frame", negatable=True)
    idle_seconds: float = setting(1.0, "with --motion: seconds between two looks for faces while nothing moves and "
                                  "no one is followed (someone who came in standing still is found within this)",
                                  least=0.05)
    detect_every: int = setting(DETECT_EVERY, "while everyone in view is followed, look for faces on every N-th frame "
                                "only and carry the faces by their pixels in between; the detector looks at once on a "
                                "cut, a face lost, or (with --motion) something moving where no one is; 1: on every "
                                "frame", least=1)

    @property
    def camera(self):
        return self.name or camera_name(self.source)


def new_live_run(settings, pipeline, events=None, fps=0.0):
    """The LiveRun of ``settings`` with ``pipeline`` loaded: people, alerts, evidence as they ask.

    ``events`` receives the event lines (a files.JsonLines, or anything with write(dict));
    ``fps`` is the source's frame rate, which clips are written at.
    """
    clips = None
    if settings.clips:
        clips = EvidenceClips(settings.clips, settings.camera, settings.clip_before, settings.clip_after,
                              settings.privacy, settings.evidence_faces, fps=fps)
    evidence = None
    if settings.snapshots or settings.clips:
        evidence = Evidence(settings.snapshots, clips, settings.privacy, settings.evidence_faces, settings.keep_days,
                            settings.camera)
    people = People(pipeline.classifier.class_names, settings.person_frames, settings.alert_cooldown, events,
                    settings.on_alert, evidence, settings.alert_timeout, pipeline.judging, settings.person_seconds,
                    zones=settings.zones.counted)
    return LiveRun(pipeline, people, privacy=settings.privacy, max_fps=settings.max_fps, zones=settings.zones,
                   motion=settings.motion, idle_seconds=settings.idle_seconds, detect_every=settings.detect_every)


@dataclass
class LiveCounts:
    frames: int = 0
    seconds: float = 0.0
    stopped_by: str = ""  # "q pressed", "window closed", "interrupted", "terminated" or "" (end, --max-frames)
    people: PeopleCounts = None  # People.counts()
    alerts: int = 0
    dropped: int = 0  # frames left out to keep to --max-fps
    recent_fps: float = 0.0  # frames per second of late (an average that forgets), for status reports
    interruption: KeyboardInterrupt | None = None  # what stopped the run, if Ctrl-C or SIGTERM did
    # The classes the model knows: a two-class model never says `incorrect`, so no count of it is given.
    class_names: tuple = ("mask", "no_mask", "incorrect")
    zones: dict = field(default_factory=dict)  # count zone -> PeopleCounts of the people seen in it
    # Where the time went (--profile): the process's CPU seconds, the frames the detector ran on, each stage's seconds.
    cpu_seconds: float = 0.0
    looks: int = 0
    stage_seconds: dict = field(default_factory=dict)

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self, profile=False):
        """The run's figures for its JSON summary line; with ``profile``, where the time went as well."""
        zones = {name: counts.to_json(self.class_names) | counts.compliance_json()
                 for name, counts in self.zones.items()}
        return ({"frames": self.frames, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2)}
                | self.people.to_json(self.class_names) | ({"zones": zones} if zones else {})
                | ({"profile": self.profile()} if profile else {}))

    def profile(self):
        """Milliseconds a frame by stage (STAGES), the process's CPU a frame, and the share of frames the detector
        ran on. Each stage but decode is the loop's own time in it; decode is CPU on the reader's thread; the
        process's CPU counts as well the threads the libraries compute on."""
        frames = max(self.frames, 1)
        stages = {stage: round(1000 * self.stage_seconds.get(stage, 0.0) / frames, 2) for stage in STAGES}
        return {"stages_ms": stages, "stages_total_ms": round(sum(stages.values()), 2),
                "cpu_ms": round(1000 * self.cpu_seconds / frames, 2), "detector_share": round(self.looks / frames, 3)}

    def profile_line(self):
        profile = self.profile()
        stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in profile["stages_ms"].items())
        return (f"ms a frame: {stages} (sum {profile['stages_total_ms']:.1f}; the process's CPU "
                f"{profile['cpu_ms']:.1f}); the face detector ran on {100 * profile['detector_share']:.0f} % of frames")

    def summary_line(self):
        people = self.people
        incorrect = f", incorrect {people.incorrect}" if "incorrect" in self.class_names else ""
        return (
            f"frames {self.frames}, seconds {self.seconds:.2f}, fps {self.fps:.1f}, people {people.total} "
            f"(mask {people.mask}, no_mask {people.no_mask}{incorrect}, "
            f"not judged {people.not_judged}), alerts {self.alerts}"
        )


class FrameRate:
    """Frames per second for the screen, as an exponential average so that it stays readable."""

    def __init__(self):
        self.value = 0.0
        self._last = time.perf_counter()

    def tick(self):
        now = time.perf_counter()
        instant = 1.0 / max(now - self._last, 1e-6)
        self.value = instant if self.value == 0.0 else 0.9 * self.value + 0.1 * instant
        self._last = now
        return self.value


class StageClock:
    """Where a frame's time goes: the seconds spent in each stage of the frames so far (--profile). Each lap adds
    the time since the last one to a stage."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._last = time.perf_counter()

    def restart(self):
        self._last = time.perf_counter()

    def lap(self, stage):
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now


class LiveRun:
    """The per-frame work of the live script; ``run`` loops it over a source."""

    def __init__(self, pipeline, people, classify_per_frame=3, keep_lost=1.0, privacy="off", max_fps=None,
                 zones=(), motion=True, idle_seconds=1.0, detect_every=DETECT_EVERY):
        self.pipeline = pipeline
        self.motion = MotionDetector() if motion else None
        self.idle_seconds = idle_seconds
        self.detect_every = detect_every
        self.carrier = FaceCarrier()
        self._looked_at = -float("inf")  # the frame time of the detector's last run
        self._since_look = 0  # frames since the detector's last run
        # What the detector found at its last run, (faces, doubtful boxes), and where they are now (carried, or
        # where they were while nothing moves): doubtful faces and faces that are no one's (in an ignore zone: no
        # track keeps the detector running for them) are hidden where privacy hides faces all the same.
        self._detected = ([], [])
        self._last_found = ([], [])
        self.looks = 0  # frames the detector ran on
        self.clock = StageClock()
        self.zones = ZoneMap(zones)
        # Frames closer in time than this to the last one processed are dropped: a camera never lags behind.
        self.least_interval = 1.0 / max_fps if max_fps else 0.0
        # Each classifier call's time, for whoever watches the run (take_classifier_seconds); bounded, since a run
        # nobody watches never empties it.
        self.classifier_seconds = deque(maxlen=100)
        self.hide_faces = hides_faces(privacy)  # in the video written and the window
        # The boxes of the frame's faces that are no people (doubtful, or in an ignore zone): hidden, never labelled.
        self.doubtful = []
        self.class_names = people.class_names
        self.tracker = FaceTracker(self.class_names, keep_lost=keep_lost)
        self.cuts = CutDetector()
        self.people = people
        self.classify_per_frame = classify_per_frame

    def _due(self, tracks, looked):
        """The indices of the faces to classify now: undecided people first, then the longest unasked. Between
        two looks, only undecided people: a carried face's crop is as good, and a decided vote can wait for the
        next look. (Asking decided people every 0.5 s only, on the tracking benchmark's clips, flagged 8 mask
        wearers where every look flagged 5: a vote that decided early needs the answers after to change its mind.)"""
        order = sorted(range(len(tracks)), key=lambda i: (tracks[i].vote.label is not None, tracks[i].last_classified))
        if not looked:
            order = [i for i in order if tracks[i].vote.label is None]
        return order[:self.classify_per_frame]

    def step(self, frame):
        """Track and label the faces of one Frame; their FaceResults, in detection order."""
        clock = self.clock
        if self.zones:
            self.zones.black_out(frame.image)  # before the detector, the pictures and the cut test see it
        moved = self.motion(frame.image) if self.motion else True  # every frame: the background follows the view
        clock.lap("motion")
        # A view in which nothing moved was not cut (a cut moves most of it): the cut test runs only on motion.
        cut = self.cuts(frame.image) if moved else False
        clock.lap("track")
        faces, doubtful, looked = self._find(frame, cut, moved)
        # Every face that is no one's (doubtful, or in an ignore zone) is still hidden where privacy hides faces.
        self.doubtful = list(doubtful)
        if self.zones:
            outside = ~self.zones.ignored([face.box for face in faces], frame.image.shape)
            self.doubtful += [face.box for face, keep in zip(faces, outside) if not keep]
            faces = [face for face, keep in zip(faces, outside) if keep]
            doubtful = [box for box, keep in zip(doubtful, ~self.zones.ignored(doubtful, frame.image.shape)) if keep]
        boxes = [face.box for face in faces]
        # Looks are taken where the detector framed the faces: a carried box is placed by the look itself.
        looks = looks_of(frame.image, boxes) if looked else None
        tracks, gone = self.tracker.update(boxes, frame.time, doubtful, cut, looks)
        if self.zones.counted:
            for track, names in zip(tracks, self.zones.counted_in(boxes, frame.image.shape)):
                track.zones |= names
        clock.lap("track")
        due = self._due(tracks, looked)
        if due:
            started = time.perf_counter()
            crops = self.pipeline.crops(frame.image, [faces[i] for i in due])
            clock.lap("align")
            answers = self.pipeline.classify_crops(crops)
            clock.lap("classify")
            self.classifier_seconds.append(time.perf_counter() - started)
            for i, probabilities in zip(due, answers):
                if probabilities is not None:
                    weight = self.pipeline.judging.weight(faces[i].box, pose_of(faces[i]), probabilities)
                    tracks[i].vote.add([probabilities[name] for name in self.class_names], weight)
                    tracks[i].last_classified = frame.time
        self.people.update(tracks, frame, self.doubtful)
        self.people.left(gone)
        results = [self._face(face, track) for face, track in zip(faces, tracks)]
        clock.lap("people")
        return results

    def _find(self, frame, cut, moved):
        """(faces, doubtful boxes, whether the detector ran) of the frame. While everyone in view is followed, the
        detector runs every detect_every frames, the faces carried in between; while someone followed is lost, on
        every frame with motion; while nothing moves, every detect_every frames if anyone is followed (lost), else
        every idle_seconds: a view that did not change holds no new face, and the faces it found last that no one
        follows (doubtful, or in an ignore zone) are where they were."""
        self._since_look += 1
        carried = self._carry(frame, cut, moved)
        if carried is not None:
            self._last_found = carried
            self.clock.lap("carry")
            return list(carried[0]), list(carried[1]), False
        # Someone followed but not carried (a track lost, a face not found again): a look on every frame where
        # anything moves (a cut is found on such frames only), else every detect_every frames, as nothing came
        # back into a view that did not change.
        followed = bool(self.tracker.tracks) and self._since_look >= self.detect_every
        if moved or followed or frame.time - self._looked_at >= self.idle_seconds:
            self._looked_at, self._since_look = frame.time, 0
            self.looks += 1
            faces, doubtful = self.pipeline.face_detector.find(frame.image)
            self.clock.lap("detect")
            self._detected = self._last_found = (list(faces), list(doubtful))
            if self.detect_every > 1 and faces:
                self.carrier.start(frame.image, [face.box for face in faces] + list(doubtful))
                self.clock.lap("carry")
            return faces, doubtful, True
        return list(self._last_found[0]), list(self._last_found[1]), False

    def _carry(self, frame, cut, moved):
        """(faces, doubtful boxes) carried from the last frame, when the detector may skip this one: it found
        faces at its last run, fewer than detect_every frames ago, every track is followed (none lost, none cut
        from), nothing moved where no one is (a person's face and the body below it) and every face was found
        again. Else None."""
        faces, doubtful = self._last_found
        if (self.detect_every <= 1 or self._since_look >= self.detect_every or cut or not faces
                or any(track.missed or track.before_cut for track in self.tracker.tracks.values())):
            return None
        last = [face.box for face in faces] + list(doubtful)
        if moved and self.motion is not None:
            height = frame.image.shape[0]
            people = [(x1 - (x2 - x1), y1 - (y2 - y1) / 2, x2 + (x2 - x1), height) for x1, y1, x2, y2 in last]
            if self.motion.moved_outside(people, frame.image.shape):
                return None
        found = self.carrier(frame.image, last)
        if found is None:
            return None
        detected_faces = self._detected[0]
        boxes = [tuple(round(v) for v in box) for box in found]
        carried_faces = []
        for face, box in zip(detected_faces, boxes):
            shift = (box[0] - face.box[0], box[1] - face.box[1])
            landmarks = None if face.landmarks is None else face.landmarks + shift
            carried_faces.append(Face(box, face.score, landmarks))
        return carried_faces, boxes[len(detected_faces):]

    def _face(self, face, track):
        """The face with its person's label: the vote's once decided, else the likeliest class so far."""
        if track.vote.answers == 0:
            # No answer was computed: nothing may look like one (a uniform vote would read as `mask`).
            return FaceResult(face.box, face.score, None, judged=False, track_id=track.track_id, decided=False)
        probabilities = dict(zip(self.class_names, map(float, track.vote.probabilities)))
        return FaceResult(face.box, face.score, probabilities, self.people.judged(track), track.vote.label,
                          track.track_id, track.vote.label is not None)

    def view_counts(self, faces):
        """(people in view, those of them flagged) in a frame's FaceResults: the faces whose track counts as a
        person, and of them those whose label is a violation judged as a flag. The window and the service say
        these figures."""
        people = [face for face in faces if self.people.is_person(self.tracker.tracks[face.track_id])]
        return len(people), sum(face.label in VIOLATIONS and face.judged for face in people)

    def take_classifier_seconds(self):
        """The classifier calls' times since the last take, oldest first."""
        taken = list(self.classifier_seconds)
        self.classifier_seconds.clear()
        return taken

    def finish(self):
        self.people.left(self.tracker.finish())
        self.people.finish()
        if self.people.evidence:
            self.people.evidence.close()

    def run(self, source, json_lines=None, writer=None, window=None, max_frames=0, watch=None, picture=None,
            profile=False):
        """Every frame of ``source``: track, label, report as asked; return the LiveCounts.

        ``profile``: the JSON summary says where the time went (LiveCounts.profile).
        ``watch``, if given, is called after each frame with the LiveCounts so far and the frame's FaceResults.
        ``picture``, if given, takes the drawn frame when it wants one (service.camera.LivePicture): drawn only then.
        """
        counts = LiveCounts(class_names=self.class_names)
        frame_rate = FrameRate()
        start, cpu_start = time.perf_counter(), time.process_time()
        clock = self.clock
        due = None  # the time (the source's) from which the next frame is taken, with --max-fps
        try:
            for frame in source:
                if self.least_interval:
                    # Half an interval early is on time: frames of a 10 fps camera come 99 or 101 ms apart.
                    if due is not None and frame.time < due - self.least_interval / 2:
                        counts.dropped += 1
                        continue
                    due = max(frame.time, due or frame.time) + self.least_interval
                # A frame's JSON line, its video frame and its count are all done, or none is.
                with interrupts_deferred():
                    self._one_frame(frame, counts, frame_rate.tick, json_lines, writer, window, watch, picture)
                if window:
                    counts.stopped_by = display.show_frame(window, frame.image)
                    clock.lap("write")
                    if counts.stopped_by:
                        break
                if max_frames and counts.frames >= max_frames:
                    break
        except KeyboardInterrupt as interruption:
            counts.stopped_by = "terminated" if isinstance(interruption, Terminated) else "interrupted"
            counts.interruption = interruption
        finally:
            counts.seconds = time.perf_counter() - start
            counts.cpu_seconds = time.process_time() - cpu_start
            counts.looks = self.looks
            counts.stage_seconds = dict(self.clock.seconds, decode=getattr(source, "read_seconds", 0.0))
            self.finish()
            if window:
                display.close_windows()
        counts.people = self.people.counts()
        counts.zones = self.people.zone_counts()
        counts.alerts = len(self.people.alerts)
        if json_lines:
            json_lines.write({"summary": counts.summary(profile)})
        return counts

    def _one_frame(self, frame, counts, tick, json_lines, writer, window, watch, picture):
        """Step, report, draw and write one frame, each stage timed; ``tick`` gives the frame rate to draw."""
        clock = self.clock
        clock.restart()  # the wait for the frame is no stage's: its decoding is timed where it is done
        faces = self.step(frame)
        if self.people.evidence:
            self.people.evidence.add(frame, faces, self.doubtful)  # before anything is drawn on it
            self.people.evidence.sweep_when_due()
            clock.lap("people")
        if json_lines:
            json_lines.write({"frame": frame.index, "time": round(frame.time, 3), "faces": [f.to_json() for f in faces]})
        fps = tick()
        shown = picture is not None and picture.wanted()
        clock.lap("report")
        if writer or window or shown:
            self.draw(frame, faces, fps)
            clock.lap("draw")
        if writer:
            writer.write(frame.image, frame.time)
        if shown:
            picture.take(frame.image)
        counts.frames += 1
        counts.recent_fps = fps
        clock.lap("write")
        if watch:
            watch(counts, faces)
            clock.lap("report")

    def draw(self, frame, faces, fps):
        if self.hide_faces:
            pixelate(frame.image, [face.box for face in faces] + self.doubtful)
        display.draw_results(frame.image, faces)
        display.draw_panel(frame.image, self.panel_lines(faces, fps))
        banner = self.people.banner_text(frame.time)
        if banner:
            display.draw_banner(frame.image, banner)
        # Black again over whatever was drawn on a private zone (the panel, a banner): it never changes.
        self.zones.black_out(frame.image)
        self.zones.draw(frame.image)

    def panel_lines(self, faces, fps):
        """The window's panel: the frame rate, who is in view (as the service's state says it), the totals."""
        in_view, flagged = self.view_counts(faces)
        counts = self.people.counts()
        incorrect = TEXT["incorrect"].lower()
        return [
            f"{fps:.0f} FPS",
            f"in view: {in_view} people, {flagged} flagged",
            f"total: {counts.total} people, {counts.no_mask} {TEXT['no_mask'].lower()}"
            + (f", {counts.incorrect} {incorrect}" if "incorrect" in self.class_names else ""),
        ]


class LiveOutputs:
    """The files a live run writes: checked before the run, never over its source, closed whole.

    Checking is all the constructor does. The JSON Lines files are opened by
    ``open``, once the source is open and the models are loaded, so a run
    that cannot start leaves an earlier file as it was and creates none.
    They are appended to, never emptied: a camera's lines are read while the
    run goes on, and an earlier run's lines stay before this run's.
    """

    def __init__(self, source, video=None, json_path=None, events_path=None, snapshots=None, clips=None):
        kind, target = describe_source(source)
        for path in (video, json_path, events_path):
            if path and path != "-" and kind == "file" and _same_file(path, target):
                raise UserError(f"{path} is the source video; choose another output name")
        for path in (video, json_path, events_path):
            if path and path != "-":
                check_writable(path)
        for folder in (snapshots, clips):
            if folder:
                check_writable(Path(folder) / "evidence.jpg")
        self.video = video
        self.json_to_stdout = json_path == "-"
        self._json_path, self._events_path = json_path, events_path
        self.json_lines = self.events = None
        self._writer = None

    def open(self):
        """Open the JSON Lines outputs for appending; call it when the run is sure to start."""
        # Live lines are read as the run goes on: written straight to their files.
        if self._json_path:
            self.json_lines = JsonLines(self._json_path, streaming=True)
        if self._events_path:
            self.events = JsonLines(self._events_path, streaming=True)
        return self

    def video_writer(self, fps):
        if self.video:
            self._writer = VideoOutput(self.video, fps)
        return self._writer

    @property
    def video_writer_codec(self):
        """The codec of the annotated video written (see VideoOutput.CODECS), or None."""
        return self._writer.codec if self._writer else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for lines in (self.json_lines, self.events):
            if lines:
                lines.close()
        if self._writer:
            self._writer.close()


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()
