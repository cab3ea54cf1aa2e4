"""mask_detector/synthetic.py: where masks sit on a face, and that drawing is repeatable and local."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from support.scripts import DATASET, require
from mask_detector import synthetic

# A frontal face with an eye distance of 60 px, in YuNet's order: right eye, left eye, nose tip, mouth corners.
FACE = np.array([[100.0, 100.0], [160.0, 100.0], [130.0, 140.0], [108.0, 172.0], [152.0, 172.0]])
SEEDS = range(40)


def turned(points, degrees, about=(130.0, 140.0)):
    """The points rolled by ``degrees`` about ``about``, as a head tilted to one side."""
    matrix = cv2.getRotationMatrix2D(about, degrees, 1.0)
    return np.hstack([points, np.ones((len(points), 1))]) @ matrix.T


def inside(polygon, point):
    """Signed distance from ``point`` to the polygon's edge: positive inside."""
    return cv2.pointPolygonTest(polygon.astype(np.float32), tuple(map(float, point)), True)


def chin(landmarks):
    mouth = landmarks[3:].mean(axis=0)
    return mouth + (mouth - landmarks[:2].mean(axis=0)) * 0.6


@pytest.fixture(scope="module")
def real_face():
    """A real unmasked face and its YuNet landmarks."""
    from mask_detector.faces import YuNetDetector
    from mask_detector.files import read_image

    image = read_image(sorted(require(DATASET / "observations" / "without_mask").glob("*.jpg"))[5])
    border = 80
    padded = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    faces = YuNetDetector(detect_size=320).detect(padded)
    assert len(faces) == 1
    return image, faces[0].landmarks - border


@pytest.mark.parametrize("roll", [0, 25, -35])
@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_each_placement_covers_what_it_should(shape, roll):
    landmarks = turned(FACE, roll)
    nose, mouth_corners = landmarks[2], landmarks[3:]
    for seed in SEEDS:  # the random shifts of the edges never break a placement
        rng = np.random.default_rng(seed)
        outline = {p: synthetic.mask_outline(synthetic.mask_geometry(landmarks, p, rng), shape)
                   for p in synthetic.PLACEMENTS}
        assert inside(outline["correct"], nose) > 3
        assert all(inside(outline["correct"], corner) > 3 for corner in mouth_corners)
        assert all(inside(outline["correct"], eye) < -5 for eye in landmarks[:2])
        assert inside(outline["below_nose"], nose) < -3
        assert all(inside(outline["below_nose"], corner) > 0 for corner in mouth_corners)
        for placement in ("mouth_uncovered", "on_chin"):
            assert all(inside(outline[placement], corner) < 0 for corner in mouth_corners)
        # Every placement covers the chin.
        assert all(inside(polygon, chin(landmarks)) > 0 for polygon in outline.values())


def test_the_mask_rolls_with_the_head():
    for placement in synthetic.PLACEMENTS:
        upright = synthetic.mask_outline(synthetic.mask_geometry(FACE, placement), "kn95")
        rolled = synthetic.mask_outline(synthetic.mask_geometry(turned(FACE, 30), placement), "kn95")
        np.testing.assert_allclose(rolled, turned(upright, 30), atol=1e-6)


def test_mask_coordinates_go_there_and_back():
    geometry = synthetic.mask_geometry(turned(FACE + [[0, 0], [0, 0], [12, 0], [8, 0], [8, 0]], 10), "correct")
    s, t = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-0.1, 1.1, 7))
    back = geometry.to_mask(geometry.to_image(s, t))
    np.testing.assert_allclose(back[0], s, atol=1e-9)
    np.testing.assert_allclose(back[1], t, atol=1e-9)


def test_same_seed_same_pixels_other_seed_other_pixels(real_face):
    image, landmarks = real_face

    def draw(seed):
        rng = np.random.default_rng(seed)
        masked = synthetic.draw_mask(image, landmarks, synthetic.random_style(rng), "correct", rng)
        negative, _ = synthetic.draw_negative(image, landmarks, rng)
        return cv2.imencode(".jpg", masked)[1].tobytes() + cv2.imencode(".jpg", negative)[1].tobytes()

    assert draw(4) == draw(4)
    assert draw(4) != draw(5)


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_drawing_changes_only_the_mask_and_its_edge(real_face, shape):
    image, landmarks = real_face
    original = image.copy()
    scale = float(np.hypot(*(landmarks[1] - landmarks[0])))
    for seed in range(6):
        rng = np.random.default_rng(seed)
        style = replace(synthetic.random_style(rng), shape=shape, ear_loops=seed % 2 == 0)
        placement = synthetic.PLACEMENTS[seed % 4]
        drawn = synthetic.draw_mask(image, landmarks, style, placement, rng)
        assert np.array_equal(image, original)  # the input is never changed
        geometry = synthetic.mask_geometry(landmarks, placement)
        outline = synthetic.mask_outline(geometry, shape)
        # Allowed: the mask as placed without random shifts, grown by the shifts, its blurred edge and shadow.
        allowed = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(allowed, [np.round(outline).astype(np.int32)], 1)
        if style.ear_loops:
            for path in synthetic.ear_loop_paths(geometry, shape):
                cv2.polylines(allowed, [np.round(path).astype(np.int32)], False, 1, 3)
        allowed = cv2.dilate(allowed, np.ones((2 * round(0.3 * scale) + 1,) * 2, np.uint8))
        changed = np.abs(drawn.astype(int) - image.astype(int)).max(axis=2) > 2
        assert not (changed & (allowed == 0)).any()
        core = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(core, [np.round(outline).astype(np.int32)], 1)
        assert changed[core.astype(bool)].mean() > 0.8  # and the mask is really there


def test_hard_negatives_stay_off_the_eyes(real_face):
    image, landmarks = real_face
    scale = float(np.hypot(*(landmarks[1] - landmarks[0])))
    radius = round(0.2 * scale)
    for seed in range(12):
        for kind in synthetic.NEGATIVES:
            drawn, drawn_kind = synthetic.draw_negative(image, landmarks, np.random.default_rng(seed), kind)
            assert drawn_kind == kind and drawn.shape == image.shape
            assert np.abs(drawn.astype(int) - image.astype(int)).max() > 30  # something was drawn
            for x, y in np.round(landmarks[:2]).astype(int):
                eye = (slice(y - radius, y + radius), slice(x - radius, x + radius))
                assert np.array_equal(drawn[eye], image[eye]), (kind, seed)


def test_random_styles_cover_every_shape_and_pattern():
    rng = np.random.default_rng(0)
    styles = [synthetic.random_style(rng) for _ in range(300)]
    assert {s.shape for s in styles} == set(synthetic.SHAPES)
    assert {s.pattern for s in styles} == set(synthetic.PATTERNS)
    assert len({s.colour for s in styles}) > 100  # colours are jittered, not a handful


def test_faces_a_mask_cannot_be_fitted_to_are_named():
    assert synthetic.landmark_problem(FACE) is None
    assert synthetic.landmark_problem(FACE / 10) == "face too small"
    profile = FACE + [[0, 0], [0, 0], [40, 0], [30, 0], [30, 0]]
    assert synthetic.landmark_problem(profile) == "face turned to the side"
    upside_down = FACE * [1, -1]
    assert synthetic.landmark_problem(upside_down) == "landmarks out of place"


def test_only_what_shows_in_the_photo_is_chosen():
    roomy, tight = (320, 260, 3), (200, 260, 3)  # the tight crop ends a little below the mouth
    assert synthetic.fitting_kinds(roomy, FACE, synthetic.PLACEMENTS + synthetic.NEGATIVES) == list(
        synthetic.PLACEMENTS + synthetic.NEGATIVES)
    assert synthetic.fitting_kinds(tight, FACE, synthetic.PLACEMENTS) == ["correct", "below_nose"]
    rng = np.random.default_rng(0)
    assert {synthetic.choose_fitting(rng, synthetic.INCORRECT_PLACEMENTS, tight, FACE) for _ in range(20)} == {
        "below_nose"}
    assert synthetic.choose_fitting(rng, ("on_chin",), tight, FACE) is None
    square = np.array([[-10, 0], [10, 0], [10, 20], [-10, 20]], float)
    assert synthetic.visible_share((100, 100, 3), square) == pytest.approx(0.5, abs=0.06)


def test_a_turned_face_carries_its_landmarks_with_its_pixels():
    """Dots drawn at the five points are found where turn_head says the points went."""
    image = np.full((300, 300, 3), 128, np.uint8)
    for x, y in FACE:
        cv2.circle(image, (int(x), int(y)), 3, (0, 0, 255), -1)
    same, points = synthetic.turn_head(image, FACE, 0.0, 0.0)
    assert np.array_equal(same, image) and np.allclose(points, FACE)
    for yaw, pitch in ((25.0, 0.0), (-30.0, 10.0), (15.0, -12.0)):
        turned, points = synthetic.turn_head(image, FACE, yaw, pitch)
        for x, y in points:
            patch = turned[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3]
            assert (patch[..., 2] > 200).any(), (yaw, pitch, x, y)
        frame = synthetic.face_frame(points)
        # Turned to the image's right, the nose moves right of the eyes' midpoint, and the near half
        # of the face (the left of the picture) widens.
        assert np.sign(frame.nose[0] - synthetic.face_frame(FACE).nose[0]) == np.sign(yaw)


def test_a_close_up_is_cut_by_the_share_asked():
    image = np.zeros((300, 300, 3), np.uint8)
    x1, y1, x2, y2 = synthetic.face_box(FACE)
    cut, points = synthetic.cut_close_up(image, FACE, "top", 0.25)
    assert cut.shape[0] == 300 - int(y1 + 0.25 * (y2 - y1)) and np.allclose(points[:, 0], FACE[:, 0])
    cut, points = synthetic.cut_close_up(image, FACE, "right", 0.2)
    assert cut.shape[1] == int(x2 - 0.2 * (x2 - x1)) and np.allclose(points, FACE)
    with pytest.raises(ValueError):
        synthetic.cut_close_up(image, FACE, "bottom", 0.2)


def test_a_hand_on_a_mask_takes_the_skin_colour_given(real_face):
    image, landmarks = real_face
    rng = np.random.default_rng(0)
    masked = synthetic.draw_mask(image, landmarks, synthetic.random_style(rng, dark=True), "correct", rng)
    skin = synthetic.skin_colour(image, landmarks)
    assert synthetic.skin_colour(masked, landmarks).mean() < skin.mean() - 40  # the cheeks are now a dark mask
    touched = synthetic.draw_hand(masked, landmarks, np.random.default_rng(1), skin=skin)
    changed = np.abs(touched.astype(int) - masked.astype(int)).sum(axis=2) > 60
    assert changed.any()
    hand = np.median(touched[changed], axis=0)
    assert np.abs(hand - skin).max() < 60, (hand, skin)  # the hand is skin-coloured, not mask-coloured
