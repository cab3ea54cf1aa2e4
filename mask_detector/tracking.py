"""People, not frames: follow each face from frame to frame and give each person one label.

FaceTracker links the faces of a new frame to the tracks of the last ones:
each track's box is moved on by its own velocity to where the face should
be now, and the pairs that overlap most are linked first. A track that
finds no face is kept, still moving, for ``keep_lost`` seconds, so a missed
detection or a moment behind someone does not make a new person; a face
that comes back further off is known again by its look (looks_of).

FaceCarrier carries the faces the detector found to the frames after it
by their own pixels, so that the detector need not run on every frame.

CutDetector tells a cut in the footage from a move of the view: across a
cut no face takes a track by its place, only by the look of faces that,
moved alike, fit those before it.

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

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from mask_detector.boxes import greedy_pairs, iou_matrix, near
from mask_detector.motion import shrink


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


# Two looks (looks_of) of one face, framed a little differently, shrunk, blurred or dimmed, are at least this alike,
# and two people's faces seldom are: fitted by benchmarks/fit_looks.py on the training data's validation split.
LEAST_LIKENESS = 0.75
LOOK_SIDE = 16  # pixels of a look's side: enough for the layout of a face, hair and mask, cheap to compare


def looks_of(image, boxes, side=LOOK_SIDE):
    """What each face looks like, to know it again: its box in grey, shrunk to ``side`` x ``side`` pixels, at
    mean 0 and spread 1 (light that dims changes nothing)."""
    looks = []
    # Plain Python and OpenCV per face: numpy's overhead on such small arrays cost four times as much.
    for x1, y1, x2, y2 in _pixel_boxes(image, boxes):
        # Each face made grey on its own: a few faces cost a tenth of making the whole frame grey.
        crop = image[y1:y2, x1:x2]
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
        looks.append(_standardised(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)))
    return looks


def likeness(look, other):
    """How alike two looks are: their correlation, from -1 to 1."""
    return float(np.dot(look, other) / len(look))


def _blend(look, new):
    """A track's look after a new sighting: mostly the sightings before, so one blurred frame changes it little."""
    return new if look is None else _standardised(0.7 * look + 0.3 * new)


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
    before_cut: bool = False  # last seen before a cut in the footage: where it was says nothing of where it is
    look: np.ndarray | None = None  # what the face looks like (looks_of), blended over the frames it was found in
    zones: set = field(default_factory=set)  # the count zones its face was seen in (live.LiveRun)

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

    def __init__(self, class_names, least_iou=0.3, keep_lost=1.0, vote_options=None, lost_reach=0.5,
                 least_likeness=LEAST_LIKENESS, look_reach=2.0):
        self.class_names = tuple(class_names)
        self.least_likeness = least_likeness  # how alike (likeness) two looks must be to be taken for one face
        # How far, in face widths, a face that looks like a track may be from where it was last seen to continue it.
        self.look_reach = look_reach
        # How far, in face widths, a face may be from where a lost track should be, or was last seen, to continue
        # it: 0.5 halved the split tracks of the dev clips; 1.0 split a little less but joined neighbours.
        self.lost_reach = lost_reach
        self.least_iou = least_iou
        self.keep_lost = keep_lost
        self.vote_options = vote_options or {}
        self.tracks = {}  # track_id -> Track, those in view or recently lost
        self._next_id = 1
        self.scene = np.zeros(2)  # how far, in pixels, the whole view has moved since the start

    def update(self, boxes, now, doubtful=(), cut=False, looks=None):
        """Link this frame's face ``boxes`` to tracks; return (tracks for the boxes, tracks that left view).

        ``doubtful``: boxes of faces scored too low to be labelled. As in ByteTrack, a track no face was
        linked to takes one of them that overlaps where it should be, and so is not lost: a face that scores
        low for a few frames (blur, a turn, a shadow) keeps its track. A doubtful face never starts a track.
        ``cut``: the footage was cut before this frame (CutDetector). A track seen before it is continued only
        by a face that looks like it (``looks``, from ``looks_of``), where the faces before the cut, moved alike,
        fit those after: the same people seen from a view moved further than the cut detector allows for. Else
        it waits, unlinked, and leaves when its time is up, since a face where another was is someone else.
        """
        gone = [track for track in self.tracks.values() if now - track.last_time > self.keep_lost]
        for track in gone:
            del self.tracks[track.track_id]
        for track in self.tracks.values():
            track.before_cut = track.before_cut or cut
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        live = [track for track in self.tracks.values() if not track.before_cut]
        pairs = []
        if live and len(boxes):
            predicted = np.array([track.predicted_box(now) for track in live])
            lost = np.array([track.missed > 0 for track in live])
            carried = np.array([self._carried(track) for track in live])
            pairs = [(live[t], b) for t, b in self._pairs(predicted, boxes, lost, carried)]
            self._follow_scene([(track, boxes[b]) for track, b in pairs if not track.missed])
        jumped = self._jumps(pairs, boxes, now, looks)
        jumped += self._known_again(pairs + jumped, boxes, looks)
        for track in live:
            track.missed += 1
        assigned = [None] * len(boxes)
        for track, b in pairs + jumped:
            assigned[b] = track
        self._hold(live, {id(track) for track in assigned if track is not None}, doubtful, now)
        jumped_boxes = {b for _, b in jumped}
        for b, track in enumerate(assigned):
            if track is None:
                assigned[b] = self._start(boxes[b], now)
            else:
                self._continue(track, boxes[b], now, measure_speed=b not in jumped_boxes)
            if looks is not None:
                assigned[b].look = _blend(assigned[b].look, looks[b])
        return assigned, gone

    def _jumps(self, pairs, boxes, now, looks):
        """(track, box index) pairs the first pass left over, linked by one move common to their faces: the camera
        jumped (a dropped frame, a shake), or the footage was cut to a moved view, moving every face alike. A
        track seen before a cut takes a face only if it looks like it."""
        linked = {id(track) for track, _ in pairs}
        waiting = [track for track in self.tracks.values() if id(track) not in linked]
        left_boxes = [b for b in range(len(boxes)) if b not in {b for _, b in pairs}]
        if not waiting or not left_boxes:
            return []
        expected = np.array([track.box if track.before_cut else track.predicted_box(now) for track in waiting])
        shift = common_shift(expected, boxes[left_boxes])
        if shift is None:
            return []
        moved = expected + np.concatenate([shift, shift])
        jumped = []
        for t, b in self._pairs(moved, boxes[left_boxes], np.ones(len(waiting), bool)):
            track, box = waiting[t], left_boxes[b]
            if track.before_cut and (looks is None or track.look is None or
                                     likeness(track.look, looks[box]) < self.least_likeness):
                continue
            track.before_cut = False
            jumped.append((track, box))
        return jumped

    def _known_again(self, pairs, boxes, looks):
        """(track, box index) pairs of tracks and faces still left over that look alike (``looks``), the face within
        ``look_reach`` face widths of where the track was last seen, moved as the view has moved since: someone
        back from behind others further off than ``lost_reach`` allows by place alone."""
        linked, used = {id(track) for track, _ in pairs}, {b for _, b in pairs}
        waiting = [track for track in self.tracks.values()
                   if id(track) not in linked and not track.before_cut and track.look is not None]
        left = [b for b in range(len(boxes)) if b not in used]
        if looks is None or not waiting or not left:
            return []
        carried = np.array([self._carried(track) for track in waiting])
        alike = np.array([[likeness(track.look, looks[b]) for b in left] for track in waiting])
        alike = np.where(near(carried, boxes[left], self.look_reach), alike, -1.0)
        return [(waiting[t], left[b]) for t, b in greedy_pairs(alike, self.least_likeness)]

    def _carried(self, track):
        """Where a track's face was last seen, moved as the whole view has moved since (a pan, a zoom's drift)."""
        return track.box + np.tile(self.scene - track.scene_at, 2)

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


class CutDetector:
    """Tells a cut in the footage (a camera sent to another preset, an edit in a recording, another stream) from
    a move of the view, frame by frame.

    Each frame is shrunk to a grey thumbnail, scaled by its mean brightness (light that dims is no cut), and
    divided in a grid of blocks. A block is the same as in the last frame when its pattern, shifted by up to
    ``reach`` thumbnail pixels (about 25 px of a 640 px frame: shake, a pan), correlates with the last frame's
    at ``least_correlation`` or more, or when both are plain. The view was cut when no more than ``most_same``
    of its blocks are the same: someone walking past close to the camera hides less, a move of the view nothing.
    """

    def __init__(self, rows=36, grid=(4, 3), reach=2, least_correlation=0.5, most_same=0.5, plain=0.03):
        self.rows = rows  # the thumbnail's height in pixels; its width follows the frame's shape
        self.grid = grid
        self.reach = reach
        self.least_correlation = least_correlation
        self.most_same = most_same
        self.plain = plain  # a block's spread of brightness, as a share of the frame's mean, below which it is plain
        self._last = None

    def __call__(self, image):
        """Whether ``image`` (BGR or grey) follows a cut from the last one given."""
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        # Shrunk by a whole factor, the frame's edge trimmed to fit it: OpenCV's fast path, a tenth of the time.
        factor = max(1, grey.shape[0] // self.rows)
        height, width = grey.shape[0] // factor, grey.shape[1] // factor
        thumbnail = cv2.resize(grey[:height * factor, :width * factor], (width, height), interpolation=cv2.INTER_AREA)
        thumbnail = thumbnail.astype(np.float32)
        thumbnail /= thumbnail.mean() + 1.0
        last, self._last = self._last, thumbnail
        if last is None:
            return False
        # A frame of another size is another stream (a camera reconnected at another resolution): a cut.
        return last.shape != thumbnail.shape or self.same_blocks(last, thumbnail) <= self.most_same

    def same_blocks(self, last, thumbnail):
        """The share of the grid's blocks of ``thumbnail`` that are the same as in ``last``."""
        r, (columns, rows) = self.reach, self.grid
        height, width = (thumbnail.shape[0] - 2 * r) // rows, (thumbnail.shape[1] - 2 * r) // columns
        same = 0
        for top in range(r, r + rows * height, height):
            for left in range(r, r + columns * width, width):
                block = thumbnail[top:top + height, left:left + width]
                around = last[top - r:top + height + r, left - r:left + width + r]
                # The spreads only when the pattern does not match: most blocks of a move do.
                same += (cv2.matchTemplate(around, block, cv2.TM_CCOEFF_NORMED).max() >= self.least_correlation
                         or block.std() < self.plain and around.std() < self.plain)
        return same / (rows * columns)


# A carried face's patch is shrunk to this many pixels wide: enough to place a face to a pixel or two of a 640 px
# frame, small enough that a face costs some 0.1 ms.
CARRY_SIDE = 24
# How far from where it is expected a carried face is searched for, in face widths each way: a face that moves
# faster is lost, and the detector looks again.
CARRY_REACH = 0.5
# A face found where its patch matches less (normalised correlation) is lost: turned away, covered, gone. Faces
# moved a few pixels, blurred or dimmed match at 0.8 and more; another part of a face or a wall under 0.5.
LEAST_CARRY_MATCH = 0.6


class FaceCarrier:
    """Finds again, frame after frame, the faces the detector found in one frame, by their pixels: each face's
    patch, in grey, is searched for around where the face is expected (template matching). The detector runs
    every few frames and this in between, as a video analytics pipeline runs its detector at an interval and a
    tracker between (DeepStream's ``interval``)."""

    def __init__(self, side=CARRY_SIDE, reach=CARRY_REACH, least_match=LEAST_CARRY_MATCH):
        self.side, self.reach, self.least_match = side, reach, least_match
        self.patches = []  # per face: (grey patch at scale, scale, its box, its top-left corner in the frame)

    def start(self, image, boxes):
        """Take the patch of each face of ``boxes`` in ``image``, a frame the detector ran on."""
        self.patches = []
        exact = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        for box, (x1, y1, x2, y2) in zip(exact, _pixel_boxes(image, boxes)):
            scale = self.side / max(x2 - x1, 1)
            self.patches.append((_grey(image[y1:y2, x1:x2], scale), scale, box, (x1, y1)))

    def __call__(self, image, expected):
        """The boxes of the faces of ``start`` in ``image``, in the same order, each searched for around its box
        in ``expected``; None when one of them is not found (the detector must look again)."""
        if len(expected) != len(self.patches):
            return None
        height, width = image.shape[:2]
        found = []
        for (patch, scale, box, corner), around in zip(self.patches, np.asarray(expected).reshape(-1, 4)):
            margin = self.reach * (box[2] - box[0])
            # The region where the patch may be: the expected box, widened by the reach, in whole pixels.
            shift = around[:2] - box[:2]
            left, top = max(int(corner[0] + shift[0] - margin), 0), max(int(corner[1] + shift[1] - margin), 0)
            right = min(int(corner[0] + shift[0] + (box[2] - box[0]) + margin) + 2, width)
            bottom = min(int(corner[1] + shift[1] + (box[3] - box[1]) + margin) + 2, height)
            if right <= left or bottom <= top:
                return None
            region = _grey(image[top:bottom, left:right], scale)
            if region.shape[0] < patch.shape[0] or region.shape[1] < patch.shape[1] or min(patch.shape) < 4:
                return None
            match = cv2.matchTemplate(region, patch, cv2.TM_CCOEFF_NORMED)
            _, best, _, (x, y) = cv2.minMaxLoc(match)
            if not best >= self.least_match:  # NaN, from a plain patch, is no match either
                return None
            # The peak placed between pixels by a parabola through it and its neighbours: a pixel of the patch is
            # several of the frame's.
            x, y = x + _vertex(match[y, x - 1:x + 2]), y + _vertex(match[y - 1:y + 2, x])
            moved = (left + x / scale - corner[0], top + y / scale - corner[1])
            found.append(box + np.array(moved * 2))
        return found


def _vertex(values):
    """Where, from -0.5 to 0.5 around the middle one, a parabola through three values peaks; 0 at an edge."""
    if len(values) != 3:
        return 0.0
    left, middle, right = (float(v) for v in values)
    curve = left - 2 * middle + right
    return 0.0 if curve >= 0 else min(max(0.5 * (left - right) / curve, -0.5), 0.5)


def _pixel_boxes(image, boxes):
    """``boxes`` as whole pixels inside ``image``, each at least a pixel wide and high."""
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4).tolist():
        x1, y1 = min(max(int(x1), 0), width - 1), min(max(int(y1), 0), height - 1)
        yield x1, y1, min(max(math.ceil(x2), x1 + 1), width), min(max(math.ceil(y2), y1 + 1), height)


def _grey(crop, scale):
    """A crop in grey (float32), resized by ``scale``."""
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    # Shrunk by more than half, sampled first (motion.shrink): a twelfth of the cost of averaging the whole crop
    # (0.07 ms against 0.9 ms for a face of 230 px), and the same for the patch and the region around it.
    crop = shrink(crop, size) if scale < 0.5 else cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return (cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop).astype(np.float32)


def _standardised(values):
    """``values`` as a flat float32 vector at mean 0 and spread 1 (a floor keeps a plain patch from blowing up);
    OpenCV's mean and spread, since numpy's overhead on such small arrays is most of the cost."""
    values = np.asarray(values, dtype=np.float32).ravel()
    mean, spread = cv2.meanStdDev(values)
    return (values - mean[0, 0]) / (spread[0, 0] + 0.02)


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
