"""mask_detector/tracking.py: track ids through misses, camera jumps and cuts, looks, and the per-person vote."""

import cv2
import numpy as np

from mask_detector.evaluation import load_voc
from mask_detector.tracking import (LEAST_LIKENESS, CutDetector, FaceCarrier, FaceTracker, LabelVote, common_shift, likeness,
                                    looks_of)

CLASSES = ("mask", "no_mask")


def box_at(x, y, size=40):
    return [x, y, x + size, y + size]


def ids(tracks):
    return [track.track_id for track in tracks]


def test_a_moving_face_keeps_its_id_through_missed_frames():
    tracker = FaceTracker(CLASSES, keep_lost=1.0)
    first, _ = tracker.update([box_at(100, 100)], 0.0)
    for step in range(1, 10):  # 12 px a frame at 10 frames a second: the boxes barely overlap
        tracks, gone = tracker.update([box_at(100 + 12 * step, 100)], step / 10)
        assert ids(tracks) == ids(first) and gone == []
    tracker.update([], 1.0)
    tracker.update([], 1.1)  # two frames without it: predicted on at its speed
    tracks, _ = tracker.update([box_at(100 + 12 * 12, 100)], 1.2)
    assert ids(tracks) == ids(first)


def test_a_face_gone_longer_than_keep_lost_comes_back_as_a_new_track():
    tracker = FaceTracker(CLASSES, keep_lost=0.5)
    first, _ = tracker.update([box_at(100, 100)], 0.0)
    tracks, gone = tracker.update([box_at(100, 100)], 0.8)
    assert ids(gone) == ids(first) and ids(tracks) != ids(first)
    assert ids(tracker.finish()) == ids(tracks)


def test_two_faces_crossing_keep_their_own_ids():
    tracker = FaceTracker(CLASSES)
    start, _ = tracker.update([box_at(0, 100), box_at(300, 130)], 0.0)
    for step in range(1, 16):  # they walk towards each other and past
        tracks, _ = tracker.update([box_at(20 * step, 100), box_at(300 - 20 * step, 130)], step / 10)
    assert ids(tracks) == ids(start)


def test_a_camera_jump_moves_every_face_alike_and_keeps_their_ids():
    tracker = FaceTracker(CLASSES)
    faces = [box_at(100, 100), box_at(200, 120), box_at(320, 90)]
    first, _ = tracker.update(faces, 0.0)
    tracker.update(faces, 0.04)
    jumped = [[x1 - 60, y1 + 25, x2 - 60, y2 + 25] for x1, y1, x2, y2 in faces]  # frames dropped: no overlap
    tracks, gone = tracker.update(jumped, 0.08)
    assert ids(tracks) == ids(first) and gone == []
    assert np.allclose([t.velocity for t in tracks], 0)  # a jump is not a speed


def test_common_shift_needs_two_faces_to_agree():
    tracks = np.array([box_at(100, 100), box_at(200, 100)], float)
    moved = tracks + [50, 10, 50, 10]
    assert np.allclose(common_shift(tracks, moved), [50, 10])
    assert common_shift(tracks[:1], moved[:1]) is None


def test_the_vote_decides_after_three_answers_and_resists_one_odd_frame():
    vote = LabelVote(CLASSES, decide_after=3)
    vote.add([0.9, 0.1])
    vote.add([0.8, 0.2])
    assert vote.label is None
    vote.add([0.95, 0.05])
    assert vote.label == "mask"
    vote.add([0.01, 0.99])  # one blurred frame
    assert vote.label == "mask"
    for _ in range(8):  # the mask comes off: clear evidence
        vote.add([0.05, 0.95])
    assert vote.label == "no_mask"
    assert np.isclose(vote.probabilities.sum(), 1.0)


def test_a_doubtful_face_holds_a_track_but_never_starts_one():
    tracker = FaceTracker(CLASSES, keep_lost=0.3)
    first, _ = tracker.update([box_at(100, 100)], 0.0)
    for step in range(1, 8):  # its score drops for 0.7 s, longer than keep_lost: only a doubtful face is found
        tracks, gone = tracker.update([], step / 10, doubtful=[box_at(100 + step, 100)])
        assert gone == []
    tracks, gone = tracker.update([box_at(108, 100)], 0.8)
    assert ids(tracks) == ids(first) and gone == []
    assert tracks[0].frames == 2  # held, not seen: the frames a person is counted by are confident ones
    tracker.update([], 0.9, doubtful=[box_at(400, 300)])
    assert set(tracker.tracks) == set(ids(first))  # the doubtful face alone started nothing


def test_a_face_hidden_while_the_view_pans_comes_back_to_its_track():
    """The walker covers one face for six frames while the camera pans: the others show the pan, and the
    covered face, moved by it, is found again far from where it was last seen."""
    tracker = FaceTracker(CLASSES, keep_lost=1.0)
    faces = [box_at(100, 100), box_at(250, 100), box_at(400, 100)]
    first, _ = tracker.update(faces, 0.0)
    for step in range(1, 8):
        panned = [[x1 - 8 * step, y1, x2 - 8 * step, y2] for x1, y1, x2, y2 in faces]
        # The first face is covered from step 1 to 6; as it was being covered its box slid the wrong way.
        shown = panned[1:] if step < 7 else panned
        tracks, gone = tracker.update(shown, step / 25)
        assert gone == []
    assert ids(tracks) == ids(first)


def view(image, dx=0, dy=0, zoom=1.0, light=1.0):
    """A 640x480 frame of ``image``, as a camera that moved by (dx, dy) px, zoomed and in dimmer light, shows it."""
    scale = zoom * max(640 / image.shape[1], 480 / image.shape[0])
    matrix = np.array([[scale, 0, dx], [0, scale, dy]])
    frame = cv2.warpAffine(image, matrix, (640, 480), borderMode=cv2.BORDER_REPLICATE)
    return cv2.convertScaleAbs(frame, alpha=light)


def test_a_cut_is_told_from_a_move_of_the_view(samples):
    first, other = cv2.imread(str(samples[0])), cv2.imread(str(samples[2]))
    cuts = CutDetector()
    assert not cuts(view(first))
    walker = view(first, dx=-12, dy=5)
    cv2.ellipse(walker, (320, 480), (110, 460), 0, 0, 360, (38, 34, 30), -1)  # someone close to the camera
    moves = [view(first, dx=-12, dy=5), view(first, dx=-20, dy=8, zoom=1.02), view(first, dx=-20, dy=8, light=0.35),
             cv2.blur(view(first, dx=-24, dy=8), (9, 1)), walker, view(first, dx=-30, dy=10)]
    assert [cuts(frame) for frame in moves] == [False] * len(moves)
    assert cuts(view(other))  # another place
    assert not cuts(view(other, dx=-6))
    assert cuts(view(first, dx=-6))  # and back
    assert cuts(cv2.resize(view(first, dx=-6), (320, 240)))  # another stream: a camera back at another resolution


def faces_of(voc_dev, sample):
    """The annotated face boxes of a sample photo."""
    return next(a for a in load_voc(voc_dev) if a.image.name == sample.name).boxes


def test_looks_know_a_face_again_and_tell_faces_apart(samples, voc_dev):
    image = cv2.imread(str(samples[0]))
    boxes = np.asarray(faces_of(voc_dev, samples[0]), float)
    # A moment later: the face framed a few pixels differently, the light dimmer, the picture softer.
    later = cv2.GaussianBlur(cv2.convertScaleAbs(image, alpha=0.5), (3, 3), 0)
    now, again = looks_of(image, boxes), looks_of(later, boxes + [2, -2, 1, 2])
    likenesses = np.array([[likeness(a, b) for b in again] for a in now])
    assert (np.diag(likenesses) >= LEAST_LIKENESS).all()
    assert (likenesses[~np.eye(len(boxes), dtype=bool)] < LEAST_LIKENESS).all()


def test_after_a_cut_a_face_where_another_was_is_someone_else(samples, voc_dev):
    first, other = (cv2.imread(str(path)) for path in samples[:2])
    boxes = np.asarray(faces_of(voc_dev, samples[0]), float)[:3]
    tracker = FaceTracker(CLASSES, keep_lost=0.5)
    before, _ = tracker.update(boxes, 0.0, looks=looks_of(first, boxes))
    tracks, gone = tracker.update(boxes, 0.04, cut=True, looks=looks_of(other, boxes))  # same places, other faces
    assert not set(ids(tracks)) & set(ids(before)) and gone == []
    after = ids(tracks)
    tracks, gone = tracker.update(boxes, 0.3, looks=looks_of(other, boxes))
    tracks, gone = tracker.update(boxes, 0.55, looks=looks_of(other, boxes))
    assert ids(tracks) == after and sorted(ids(gone)) == sorted(ids(before))  # the people before the cut left when their time was up


def test_after_a_cut_the_same_people_in_a_moved_view_keep_their_ids(samples, voc_dev):
    image = cv2.imread(str(samples[0]))
    boxes = np.asarray(faces_of(voc_dev, samples[0]), float)
    tracker = FaceTracker(CLASSES)
    before, _ = tracker.update(boxes, 0.0, looks=looks_of(image, boxes))
    moved = cv2.warpAffine(image, np.float32([[1, 0, 90], [0, 1, 40]]), image.shape[1::-1])
    shifted = boxes + [90, 40, 90, 40]
    tracks, gone = tracker.update(shifted, 0.04, cut=True, looks=looks_of(moved, shifted))
    inside = shifted[:, 2] <= image.shape[1]  # the faces still in the picture
    assert [track.track_id for track, keep in zip(tracks, inside) if keep] == list(np.array(ids(before))[inside])
    assert gone == []


def test_a_face_back_from_behind_others_further_off_is_known_again_by_its_look(samples, voc_dev):
    image = cv2.imread(str(samples[2]))
    boxes = np.asarray(faces_of(voc_dev, samples[2]), float)[:2]
    hidden, other = boxes
    tracker = FaceTracker(CLASSES, keep_lost=1.0)
    before, _ = tracker.update([hidden], 0.0, looks=looks_of(image, [hidden]))
    tracker.update([], 0.04, looks=[])  # hidden
    width = hidden[2] - hidden[0]
    back = hidden + [1.5 * width, 0, 1.5 * width, 0]  # a face width and a half from where it was last seen
    moved = cv2.warpAffine(image, np.float32([[1, 0, 1.5 * width], [0, 1, 0]]), image.shape[1::-1])
    tracks, _ = tracker.update([back], 0.3, looks=looks_of(moved, [back]))
    assert ids(tracks) == ids(before)
    # Someone else at that place, looking otherwise, is a new person.
    tracker = FaceTracker(CLASSES, keep_lost=1.0)
    before, _ = tracker.update([hidden], 0.0, looks=looks_of(image, [hidden]))
    tracker.update([], 0.04, looks=[])
    tracks, _ = tracker.update([back], 0.3, looks=looks_of(image, [other]))
    assert ids(tracks) != ids(before)


def test_the_carrier_follows_faces_a_moving_camera_shows_and_loses_one_that_is_gone(samples, voc_dev):
    image = cv2.imread(str(samples[0]))
    first = view(image)
    scale = max(640 / image.shape[1], 480 / image.shape[0])
    boxes = np.asarray(faces_of(voc_dev, samples[0]), float) * scale
    # Faces a detector finds in a 640x480 frame, and that stay in it.
    boxes = boxes[((boxes[:, 2] - boxes[:, 0]) >= 16) & (boxes[:, 0] > 30) & (boxes[:, 2] < 610)]
    carrier = FaceCarrier()
    carrier.start(first, boxes)
    expected = boxes
    # The view pans 5 px a frame and dims: each face is found where it moved to, to a pixel and a half.
    for step in range(1, 4):
        frame = view(image, dx=-5 * step, dy=2 * step, light=1.0 - 0.1 * step)
        found = carrier(frame, expected)
        assert found is not None
        assert np.abs(np.asarray(found) - (boxes + [-5 * step, 2 * step] * 2)).max() <= 1.5
        expected = np.asarray(found)
    # One face covered (a wall where it was): that face is lost, so the detector must look.
    covered = view(image, dx=-15, dy=6)
    x1, y1, x2, y2 = (expected[0] + [-30, -30, 30, 30]).astype(int)
    covered[max(y1, 0):y2, max(x1, 0):x2] = (128, 140, 150)
    assert carrier(covered, expected) is None
    # Another place altogether: lost as well.
    assert carrier(view(cv2.imread(str(samples[2]))), expected) is None
