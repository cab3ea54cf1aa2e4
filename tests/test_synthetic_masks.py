"""mask_detector/synthetic/masks.py: drawing a mask is repeatable and local, and styles cover every kind."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from mask_detector.synthetic.geometry import PLACEMENTS, ear_loop_paths, mask_geometry, mask_outline
from mask_detector.synthetic.masks import PATTERNS, SHAPES, draw_mask, random_style
from mask_detector.synthetic.negatives import draw_negative
from synthetic_faces import load_real_face


@pytest.fixture(scope="module")
def real_face():
    return load_real_face()


def test_same_seed_same_pixels_other_seed_other_pixels(real_face):
    image, landmarks = real_face

    def draw(seed):
        rng = np.random.default_rng(seed)
        masked = draw_mask(image, landmarks, random_style(rng), "correct", rng)
        negative, _ = draw_negative(image, landmarks, rng)
        return cv2.imencode(".jpg", masked)[1].tobytes() + cv2.imencode(".jpg", negative)[1].tobytes()

    assert draw(4) == draw(4)
    assert draw(4) != draw(5)


@pytest.mark.parametrize("shape", SHAPES)
def test_drawing_changes_only_the_mask_and_its_edge(real_face, shape):
    image, landmarks = real_face
    original = image.copy()
    scale = float(np.hypot(*(landmarks[1] - landmarks[0])))
    for seed in range(6):
        rng = np.random.default_rng(seed)
        style = replace(random_style(rng), shape=shape, ear_loops=seed % 2 == 0)
        placement = PLACEMENTS[seed % 4]
        drawn = draw_mask(image, landmarks, style, placement, rng)
        assert np.array_equal(image, original)  # the input is never changed
        geometry = mask_geometry(landmarks, placement)
        outline = mask_outline(geometry, shape)
        # Allowed: the mask as placed without random shifts, grown by the shifts, its blurred edge and shadow.
        allowed = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(allowed, [np.round(outline).astype(np.int32)], 1)
        if style.ear_loops:
            for path in ear_loop_paths(geometry, shape):
                cv2.polylines(allowed, [np.round(path).astype(np.int32)], False, 1, 3)
        allowed = cv2.dilate(allowed, np.ones((2 * round(0.3 * scale) + 1,) * 2, np.uint8))
        changed = np.abs(drawn.astype(int) - image.astype(int)).max(axis=2) > 2
        assert not (changed & (allowed == 0)).any()
        core = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(core, [np.round(outline).astype(np.int32)], 1)
        assert changed[core.astype(bool)].mean() > 0.8  # and the mask is really there


def test_random_styles_cover_every_shape_and_pattern():
    rng = np.random.default_rng(0)
    styles = [random_style(rng) for _ in range(300)]
    assert {s.shape for s in styles} == set(SHAPES)
    assert {s.pattern for s in styles} == set(PATTERNS)
    assert len({s.colour for s in styles}) > 100  # colours are jittered, not a handful
