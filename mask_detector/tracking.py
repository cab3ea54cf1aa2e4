"""People, not frames: follow each face from frame to frame and give each person one label.

FaceTracker links the faces of a new frame to the tracks of the last ones:
each track's box is moved on by its own velocity to where the face should
be now, and the pairs that overlap most are linked first. A track that
finds no face is kept, still moving, for ``keep_lost`` seconds, so a missed
detection or a moment behind someone does not make a new person.

LabelVote turns the classifier's answers over a track's frames into the
person's label: it averages the log-probabilities (so a confident frame
counts more than an unsure one, but no single frame can outvote the rest),
decides after a few answers, and changes its mind only on clear evidence.

Why not a tracker library: the maintained ones (the `trackers` package,
ByteTrack in `supervision`) run on numpy 2 and OpenCV 5, but importing them
takes 1.4-1.8 s on a 2-core CPU (they bring SciPy and plotting code), which
alone breaks the live script's goal of showing the first frame within 1.5 s.
Faces are few per frame and move smoothly, which this small tracker handles;
benchmarks/bench_tracking.py scores it.
"""

from dataclasses import dataclass, field

import numpy as np

from mask_detector.boxes import greedy_pairs, iou_matrix, near


class LabelVote:
    """A person's label from the class probabilities of several frames.

    ``decide_after`` answers are needed before there is a label at all; after
    that, the label changes only when another class reaches
    ``switch_probability`` in the combined vote. Each answer's probabilities
    are floored at ``floor`` so that one frame saying 0.0 cannot veto a class.
    """

    def __init__(self, class_names, decide_after=3, switch_probability=0.75, floor=0.02, memory=0.9):
        self.class_names = tuple(class_names)
        self.decide_after = decide_after
        self.switch_probability = switch_probability
        self.floor = floor
        # Older answers fade by this factor per answer, so that a person who takes
        # a mask off is relabelled after some answers, not after as many as came before.
        self.memory = memory
        self.answers = 0
        self._weight = 0.0
        self._log_sum = np.zeros(len(self.class_names))
        self.label = None

    def add(self, probabilities, weight=1.0):
        """One answer; ``weight`` (0-1) says how much the face could show (judging.Judging.weight)."""
        probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), self.floor, 1.0)
        self._log_sum = self.memory * self._log_sum + weight * np.log(probabilities)
        self._weight = self.memory * self._weight + weight
        self.answers += 1
        combined = self.probabilities
        best = self.class_names[int(np.argmax(combined))]
        if self.answers < self.decide_after:
            return
        if self.label is None or combined[self.class_names.index(best)] >= self.switch_probability:
            self.label = best

    @property
    def weight(self):
        """The weight of the answers so far, older ones fading as they do in the vote."""
        return self._weight

    @property
    def probabilities(self):
        """The combined vote: softmax of the mean log-probability of each class."""
        if self.answers == 0:
            return np.full(len(self.class_names), 1 / len(self.class_names))
        mean = self._log_sum / self._weight
        weights = np.exp(mean - mean.max())
        return weights / weights.sum()


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # float x1, y1, x2, y2 where the face was last seen
    first_time: float
    last_time: float
    vote: LabelVote
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box change per second
    frames: int = 1  # frames in which the face was found
    missed: int = 0  # frames in a row without it, up to now
    last_classified: float = -np.inf  # time of the last classifier answer
    alerted: bool = False
    scene_at: np.ndarray = field(default_factory=lambda: np.zeros(2))  # FaceTracker.scene when last seen

    def predicted_box(self, now):
        return self.box + self.velocity * (now - self.last_time)


class FaceTracker:
    """Gives each face a track id that stays with the person while they are in view.

    ``least_iou``: how much a face must overlap a track's predicted box to
    continue it. ``keep_lost``: seconds a track waits for its face to come
    back. A lost track is also continued by a face of about its size near its
    predicted centre or near where it was last seen, since a face coming back
    from behind someone has often drifted from where the track expected it,
    and the move measured as it was being covered is no move of the face.
    """

    def __init__(self, class_names, least_iou=0.3, keep_lost=1.0, vote_options=None, lost_reach=0.5):
        self.class_names = tuple(class_names)
        # How far, in face widths, a face may be from where a lost track should be, or was last seen, to continue
        # it: 0.5 halved the split tracks of the dev clips; 1.0 split a little less but joined neighbours.
        self.lost_reach = lost_reach
        self.least_iou = least_iou
        self.keep_lost = keep_lost
        self.vote_options = vote_options or {}
        self.tracks = {}  # track_id -> Track, those in view or recently lost
        self._next_id = 1
        self.scene = np.zeros(2)  # how far, in pixels, the whole view has moved since the start

    def update(self, boxes, now, doubtful=()):
        """Link this frame's face ``boxes`` to tracks; return (tracks for the boxes, tracks that left view).

        ``doubtful``: boxes of faces scored too low to be labelled. As in ByteTrack, a track no face was
        linked to takes one of them that overlaps where it should be, and so is not lost: a face that scores
        low for a few frames (blur, a turn, a shadow) keeps its track. A doubtful face never starts a track.
        """
        gone = [track for track in self.tracks.values() if now - track.last_time > self.keep_lost]
        for track in gone:
            del self.tracks[track.track_id]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        live = list(self.tracks.values())
        assigned = [None] * len(boxes)
        jumped = set()  # boxes linked across a camera jump: their move says nothing of the face's speed
        if live and len(boxes):
            predicted = np.array([track.predicted_box(now) for track in live])
            lost = np.array([track.missed > 0 for track in live])
            # Where a lost track's face was, moved as the whole view has moved since (a pan, a zoom's drift).
            carried = np.array([track.box + np.tile(self.scene - track.scene_at, 2) for track in live])
            pairs = self._pairs(predicted, boxes, lost, carried)
            # Faces the first pass left over: the camera may have jumped (a dropped frame, a
            # shake), moving every face alike. Shift the leftover tracks by that common move.
            left_tracks = [t for t in range(len(live)) if t not in {t for t, _ in pairs}]
            left_boxes = [b for b in range(len(boxes)) if b not in {b for _, b in pairs}]
            shift = common_shift(predicted[left_tracks], boxes[left_boxes]) if left_tracks and left_boxes else None
            if shift is not None:
                moved = predicted[left_tracks] + np.concatenate([shift, shift])
                extra = [(left_tracks[t], left_boxes[b])
                         for t, b in self._pairs(moved, boxes[left_boxes], np.ones(len(left_tracks), bool))]
                pairs += extra
                jumped = {b for _, b in extra}
            for t, b in pairs:
                assigned[b] = live[t]
            self._follow_scene([(live[t], boxes[b]) for t, b in pairs if not lost[t] and b not in jumped])
        for track in live:
            track.missed += 1
        self._hold(live, {id(track) for track in assigned if track is not None}, doubtful, now)
        for b, track in enumerate(assigned):
            if track is None:
                assigned[b] = self._start(boxes[b], now)
            else:
                self._continue(track, boxes[b], now, measure_speed=b not in jumped)
        return assigned, gone

    def _follow_scene(self, continued):
        """Add this frame's move of the whole view (the median move of the faces followed from the last frame)
        to ``scene``, which lost tracks are carried by."""
        if continued:
            moves = [(box[:2] + box[2:] - track.box[:2] - track.box[2:]) / 2 for track, box in continued]
            self.scene = self.scene + np.median(moves, axis=0)

    def _hold(self, live, linked, doubtful, now):
        """Continue each track without a face this frame that a doubtful face overlaps: kept, as seen now, uncounted."""
        waiting = [track for track in live if id(track) not in linked]
        doubtful = np.asarray(doubtful, dtype=np.float64).reshape(-1, 4)
        if not waiting or not len(doubtful):
            return
        predicted = np.array([track.predicted_box(now) for track in waiting])
        for t, b in greedy_pairs(iou_matrix(predicted, doubtful), self.least_iou):
            track = waiting[t]
            track.box, track.last_time, track.missed = doubtful[b], now, 0  # not a frame its face was found in
            track.scene_at = self.scene

    def _pairs(self, predicted, boxes, lost, last=None):
        """(track, box) index pairs: most overlap first; a lost track may also take a face that is near where
        it should be or where it was last seen (``last``)."""
        affinity = iou_matrix(predicted, boxes)
        close = near(predicted, boxes, self.lost_reach)
        if last is not None:
            close |= near(last, boxes, self.lost_reach)
        close &= lost[:, None]
        affinity = np.where((affinity < self.least_iou) & close, self.least_iou, affinity)
        return greedy_pairs(affinity, self.least_iou)

    def _start(self, box, now):
        track = Track(self._next_id, box, now, now, LabelVote(self.class_names, **self.vote_options),
                      scene_at=self.scene)
        self.tracks[track.track_id] = track
        self._next_id += 1
        return track

    def _continue(self, track, box, now, measure_speed=True):
        elapsed = now - track.last_time
        if elapsed > 0 and measure_speed:
            measured = (box - track.box) / elapsed
            # Smoothed, so that one badly framed detection does not send the track flying.
            track.velocity = measured if track.frames == 1 else 0.6 * track.velocity + 0.4 * measured
        track.box = box
        track.last_time = now
        track.frames += 1
        track.missed = 0
        track.scene_at = self.scene

    def finish(self):
        """Every track still in view, which leaves with the end of the video."""
        remaining = list(self.tracks.values())
        self.tracks.clear()
        return remaining


def common_shift(track_boxes, boxes):
    """The move (dx, dy) that brings the most track boxes onto a face, if it fits two or more; else None."""
    track_centres = (track_boxes[:, :2] + track_boxes[:, 2:]) / 2
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    reach = 0.5 * (track_boxes[:, 2] - track_boxes[:, 0])[:, None]
    best, support = None, 1
    for shift in (centres[None, :, :] - track_centres[:, None, :]).reshape(-1, 2):
        distance = np.linalg.norm(track_centres[:, None, :] + shift - centres[None, :, :], axis=2)
        fitted = int((distance < reach).any(axis=1).sum())
        if fitted > support:
            best, support = shift, fitted
    return best
