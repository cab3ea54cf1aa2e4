"""Face geometry: the face's own axes from five landmarks, and where a mask lies on them.

Landmarks are YuNet's five points in image pixels, in its order: right eye,
left eye, nose tip, right mouth corner, left mouth corner (the person's right,
on the left of a frontal photo). From them come the face's axes, in which
one set of proportions fits every face, then each placement's mask position
and each mask shape's outline and ear loops, in image pixels. Nothing here
draws.
"""

from dataclasses import dataclass

import numpy as np

RIGHT_EYE, LEFT_EYE, NOSE_TIP, RIGHT_MOUTH, LEFT_MOUTH = range(5)

PLACEMENTS = ("correct", "below_nose", "mouth_uncovered", "on_chin")
INCORRECT_PLACEMENTS = PLACEMENTS[1:]

# Face proportions in eye distances (pupil to pupil): averages of adult faces,
# checked by eye on the training photos.
FACE_HALF_WIDTH = 1.1  # cheek to cheek is about 2.2 eye distances
CHIN_BELOW_MOUTH = 0.75  # the chin is this share of the eye-to-mouth distance below the mouth
JAW_NARROWING = 0.75  # the face's width at the chin, as a share of its width at the nose
# When the head turns, the nose moves one way and the outline of the cheeks,
# which lies further back, stays behind: relative to the eyes' midpoint the
# outline's centre moves by about this much of the nose's offset, the other way.
YAW_SHIFT = 0.8
# Below these, the five points are too coarse or the face too turned to fit a mask on.
MIN_EYE_DISTANCE = 8.0
MAX_NOSE_OFFSET = 0.5


@dataclass(frozen=True)
class FaceAxes:
    """The face's own axes: origin between the eyes, x along the eye line, y down the face.

    Lengths are in eye distances, so one set of proportions fits every face
    size; the axes turn with the face's roll. Points given as (x, y) on
    these axes are face coordinates; ``nose`` and ``mouth`` (the mouth
    corners' midpoint) are in them.
    """

    origin: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    scale: float  # eye distance in pixels
    nose: tuple
    mouth: tuple
    mouth_width: float

    def to_image(self, x, y):
        """Image pixels (..., 2) of points in face coordinates."""
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        return self.origin + self.scale * (x[..., None] * self.x_axis + y[..., None] * self.y_axis)

    def to_face(self, points):
        """Face coordinates x and y of image points (..., 2)."""
        offset = (np.asarray(points, np.float64) - self.origin) / self.scale
        return offset @ self.x_axis, offset @ self.y_axis

    @property
    def chin(self):
        return self.mouth[1] * (1 + CHIN_BELOW_MOUTH)

    @property
    def outline_centre(self):
        """x of the middle of the face's outline, which a turned head moves away from the nose."""
        return -YAW_SHIFT * self.nose[0]

    def half_width(self, y):
        """Half the face's width at depth ``y``: full at the nose, narrowing to the chin."""
        narrowing = np.interp(y, [self.nose[1], self.chin], [1.0, JAW_NARROWING])
        return FACE_HALF_WIDTH * narrowing

    def ridge(self, y):
        """x of the face's midline at depth ``y``: it follows the nose and mouth as the head turns."""
        return np.interp(y, [0.0, self.nose[1], self.mouth[1]], [0.0, self.nose[0], self.mouth[0]])


def face_axes(landmarks):
    """The FaceAxes of five YuNet landmarks."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye_line = points[LEFT_EYE] - points[RIGHT_EYE]
    scale = float(np.hypot(*eye_line))
    if scale < 1e-6:
        raise ValueError("both eyes are at the same point")
    x_axis = eye_line / scale
    y_axis = np.array([-x_axis[1], x_axis[0]])  # x turned a quarter clockwise: down the face
    origin = (points[RIGHT_EYE] + points[LEFT_EYE]) / 2
    local = (points - origin) / scale
    xs, ys = local @ x_axis, local @ y_axis
    mouth = ((xs[RIGHT_MOUTH] + xs[LEFT_MOUTH]) / 2, (ys[RIGHT_MOUTH] + ys[LEFT_MOUTH]) / 2)
    return FaceAxes(origin, x_axis, y_axis, scale, (xs[NOSE_TIP], ys[NOSE_TIP]), mouth,
                    float(xs[LEFT_MOUTH] - xs[RIGHT_MOUTH]))


def landmark_problem(landmarks):
    """Why a mask cannot be fitted to these landmarks (a short reason), or None when it can."""
    axes = face_axes(landmarks)
    if axes.scale < MIN_EYE_DISTANCE:
        return "face too small"
    nose_x, nose_y = axes.nose
    # Nose below the eyes, mouth below the nose, at about human distances; otherwise the points are wrong.
    if not (0.2 < nose_y < axes.mouth[1] < 2.0 and axes.mouth_width > 0.2):
        return "landmarks out of place"
    if abs(nose_x) > MAX_NOSE_OFFSET:
        return "face turned to the side"
    return None


@dataclass(frozen=True)
class MaskGeometry:
    """Where a mask lies on a face, in mask coordinates (s, t).

    t runs from the mask's top edge (0) to its bottom edge (1), at its
    centre; s from the mask's left side (-1) through its centre line (0) to
    its right side (1). Each of left, ridge and right is a face x coordinate at
    the top and at the bottom, joined by a straight line; a turned head puts the
    ridge off centre, which makes the near half of the mask wider, as in a
    photo.
    """

    axes: FaceAxes
    top: float
    bottom: float
    left: tuple
    ridge: tuple
    right: tuple

    def _sides_at(self, t):
        return [a + t * (b - a) for a, b in (self.left, self.ridge, self.right)]

    def to_image(self, s, t):
        s, t = np.broadcast_arrays(np.asarray(s, np.float64), np.asarray(t, np.float64))
        left, ridge, right = self._sides_at(t)
        x = np.where(s < 0, ridge + s * (ridge - left), ridge + s * (right - ridge))
        return self.axes.to_image(x, self.top + t * (self.bottom - self.top))

    def to_mask(self, points):
        """Mask coordinates (s, t) of image points (..., 2): the inverse of to_image."""
        x, y = self.axes.to_face(points)
        t = (y - self.top) / (self.bottom - self.top)
        left, ridge, right = self._sides_at(t)
        s = np.where(x < ridge, (x - ridge) / (ridge - left), (x - ridge) / (right - ridge))
        return s, t

    @property
    def height(self):
        return self.bottom - self.top


def mask_geometry(landmarks, placement="correct", rng=None):
    """The MaskGeometry of a mask worn as ``placement`` on the face of ``landmarks``.

    With ``rng``, the edges move a little at random, as real masks sit
    differently on every face; without it, the average position.
    """
    return mask_geometry_on_axes(face_axes(landmarks), placement, rng)


def mask_geometry_on_axes(axes, placement="correct", rng=None):
    """mask_geometry for a face given by its FaceAxes."""
    nose_y, mouth_y, chin_y = axes.nose[1], axes.mouth[1], axes.chin

    def vary(spread):
        return 0.0 if rng is None else rng.uniform(-spread, spread)

    if placement == "correct":
        # Top on the nose bridge, 40-60 % of the way from the eyes to the nose tip; bottom under the chin.
        top = nose_y * (0.5 + vary(0.1))
        bottom = chin_y + mouth_y * (0.1 + vary(0.05))
    elif placement == "below_nose":
        # Top between the nostrils and the upper lip: the whole nose shows, the mouth is covered.
        top = nose_y + (mouth_y - nose_y) * (0.42 + vary(0.08))
        bottom = chin_y + mouth_y * (0.16 + vary(0.05))
    elif placement == "mouth_uncovered":
        # Pulled down onto the lower lip: the mouth shows, the chin is covered.
        top = mouth_y * (1.08 + vary(0.04))
        bottom = chin_y + mouth_y * (0.22 + vary(0.05))
    elif placement == "on_chin":
        # Only the chin: the top sits half way between the mouth and the chin's tip.
        top = mouth_y * (1 + CHIN_BELOW_MOUTH * (0.5 + vary(0.08)))
        bottom = chin_y + mouth_y * (0.28 + vary(0.05))
    else:
        raise ValueError(f"unknown placement {placement!r}; choose one of {', '.join(PLACEMENTS)}")
    centre = axes.outline_centre
    widths = [axes.half_width(y) * (1 + vary(0.04)) for y in (top, bottom)]
    left = tuple(centre - w for w in widths)
    right = tuple(centre + w for w in widths)
    # The ridge follows the nose, but never so close to a side that one half of the mask vanishes.
    ridge = tuple(float(np.clip(axes.ridge(y), lo + 0.25 * w, hi - 0.25 * w))
                  for y, lo, hi, w in zip((top, bottom), left, right, widths))
    return MaskGeometry(axes, top, bottom, left, ridge, right)


@dataclass(frozen=True)
class Outline:
    """A mask shape in mask coordinates: how far its corners reach and how its edges bend.

    The top edge drops by ``top_drop`` from the centre to the corners (power
    1 makes a point, 2 an arch), the bottom edge rises by ``bottom_rise``;
    the sides bulge outwards by ``side_bulge``.
    """

    top_reach: float
    top_drop: float
    top_power: float
    bottom_reach: float
    bottom_rise: float
    bottom_power: float
    side_bulge: float

    def points(self, count=24):
        """The closed outline as (s, t) points, clockwise from the top's left corner."""
        top_s = np.linspace(-self.top_reach, self.top_reach, 2 * count + 1)
        top_t = self.top_drop * np.abs(top_s / self.top_reach) ** self.top_power
        side = np.linspace(0, 1, count + 2)[1:-1]
        side_s = self.top_reach + side * (self.bottom_reach - self.top_reach) + self.side_bulge * np.sin(np.pi * side)
        side_t = self.top_drop + side * (1 - self.bottom_rise - self.top_drop)
        bottom_s = np.linspace(self.bottom_reach, -self.bottom_reach, 2 * count + 1)
        bottom_t = 1 - self.bottom_rise * np.abs(bottom_s / self.bottom_reach) ** self.bottom_power
        s = np.concatenate([top_s, side_s, bottom_s, -side_s[::-1]])
        t = np.concatenate([top_t, side_t, bottom_t, side_t[::-1]])
        return np.stack([s, t], axis=1)

    def corners(self):
        """(s, t) of the right side's top and bottom corners, where ear loops are sewn on."""
        return (self.top_reach, self.top_drop), (self.bottom_reach, 1 - self.bottom_rise)


OUTLINES = {
    # Nearly a rectangle: pleated fabric pulled flat by the loops, a little narrower at the chin.
    "surgical": Outline(1.0, 0.06, 2, 0.9, 0.05, 2, -0.02),
    # Rounded: arched over the nose, a deep curve under the chin.
    "cloth": Outline(0.96, 0.16, 2, 0.7, 0.3, 1.6, 0.1),
    # Folded in half: a point on the nose bridge and a point under the chin.
    "kn95": Outline(1.0, 0.2, 1, 0.78, 0.3, 1, 0.04),
}


def mask_outline(geometry, shape):
    """The mask's outline in image pixels, an (n, 2) float array."""
    st = OUTLINES[shape].points()
    return geometry.to_image(st[:, 0], st[:, 1])


def ear_loop_paths(geometry, shape):
    """The visible part of each ear loop, as image-pixel polylines: from the mask's corners to the ears."""
    axes = geometry.axes
    paths = []
    for side in (-1, 1):
        ear_x = axes.outline_centre + side * FACE_HALF_WIDTH * 1.02
        for (corner_s, corner_t), ear_y in zip(OUTLINES[shape].corners(), (0.45, 0.8)):
            start = axes.to_face(geometry.to_image(side * corner_s, corner_t))
            end = np.array([ear_x, axes.nose[1] * ear_y])
            # A slack elastic: a quadratic curve bowed outwards, towards the ear's side.
            bend = np.array([end[0] + side * 0.03, (start[1] + end[1]) / 2])
            u = np.linspace(0, 1, 16)[:, None]
            curve = (1 - u) ** 2 * np.array(start) + 2 * u * (1 - u) * bend + u**2 * end
            paths.append(axes.to_image(curve[:, 0], curve[:, 1]))
    return paths
