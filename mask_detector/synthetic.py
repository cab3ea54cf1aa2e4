"""Synthetic masks: draw a face mask, or something over the mouth that is not one, from five landmarks.

The public mask datasets were made this way (a mask picture pasted along
facial landmarks), but only ever with the mask worn correctly. This module
draws masks in three shapes (surgical, cloth, KN95), many colours and prints,
shaded by the photo's own light, worn correctly or wrongly (below the nose,
off the mouth, on the chin), and, for faces without a mask, a hand, a phone,
a cup or a beard over the lower face.

Landmarks are YuNet's five points in image pixels, in its order: right eye,
left eye, nose tip, right mouth corner, left mouth corner (the person's right,
on the left of a frontal photo). Every random choice comes from the numpy
Generator passed in, so a seed gives the same pixels; no function changes the
image it is given.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

RIGHT_EYE, LEFT_EYE, NOSE_TIP, RIGHT_MOUTH, LEFT_MOUTH = range(5)

PLACEMENTS = ("correct", "below_nose", "mouth_uncovered", "on_chin")
INCORRECT_PLACEMENTS = PLACEMENTS[1:]
SHAPES = ("surgical", "cloth", "kn95")
PATTERNS = ("plain", "stripes", "dots", "print")
NEGATIVES = ("hand", "phone", "cup", "beard")

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

# BGR colours of the fabrics, by name.
COLOURS = {
    "light blue": (226, 198, 150),
    "white": (242, 242, 240),
    "black": (40, 38, 38),
    "grey": (150, 150, 146),
    "pastel pink": (205, 190, 245),
    "pastel green": (190, 228, 185),
    "pastel yellow": (175, 232, 248),
    "lavender": (230, 195, 205),
    "navy": (90, 45, 30),
    "dark red": (40, 30, 125),
    "dark green": (50, 82, 38),
    "charcoal": (72, 68, 66),
}
# Names repeat to weight the draw: most surgical masks are light blue, most KN95s white.
SHAPE_COLOURS = {
    "surgical": ("light blue",) * 5 + ("white", "black", "pastel pink", "pastel green", "grey"),
    "kn95": ("white",) * 4 + ("black", "grey", "pastel pink", "light blue", "navy"),
    "cloth": tuple(COLOURS),
}
SHAPE_CHANCES = (0.45, 0.3, 0.25)  # in the order of SHAPES
PATTERN_CHANCES = {  # in the order of PATTERNS
    "surgical": (0.88, 0.02, 0.02, 0.08),
    "kn95": (0.86, 0.02, 0.02, 0.1),
    "cloth": (0.4, 0.2, 0.15, 0.25),
}
# Dark fabrics: on a dark face such a mask shows little contrast, and the model must still see it.
DARK_COLOURS = ("black", "charcoal", "navy", "dark red", "dark green")
TYPICAL_SKIN = (120, 150, 190)  # BGR, for a face whose cheeks are outside the photo
HAIR_COLOURS = ((20, 22, 25), (25, 35, 50), (35, 50, 70), (60, 60, 62))
PHONE_COLOURS = ((25, 25, 25), (45, 45, 48), (225, 225, 228), (180, 120, 60), (70, 60, 150))
CUP_COLOURS = ((240, 240, 238), (160, 200, 225), (60, 60, 170), (150, 90, 40), (60, 140, 60))


@dataclass(frozen=True)
class FaceFrame:
    """The face's own axes: origin between the eyes, x along the eye line, y down the face.

    Lengths are in eye distances, so one set of proportions fits every face
    size; the axes turn with the face's roll. ``nose`` and ``mouth`` (the
    mouth corners' midpoint) are in these units.
    """

    origin: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    scale: float  # eye distance in pixels
    nose: tuple
    mouth: tuple
    mouth_width: float

    def to_image(self, x, y):
        """Image pixels (..., 2) of face-frame points."""
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        return self.origin + self.scale * (x[..., None] * self.x_axis + y[..., None] * self.y_axis)

    def to_face(self, points):
        """Face-frame x and y of image points (..., 2)."""
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


def face_frame(landmarks):
    """The FaceFrame of five YuNet landmarks."""
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
    return FaceFrame(origin, x_axis, y_axis, scale, (xs[NOSE_TIP], ys[NOSE_TIP]), mouth,
                     float(xs[LEFT_MOUTH] - xs[RIGHT_MOUTH]))


def landmark_problem(landmarks):
    """Why a mask cannot be fitted to these landmarks (a short reason), or None when it can."""
    frame = face_frame(landmarks)
    if frame.scale < MIN_EYE_DISTANCE:
        return "face too small"
    nose_x, nose_y = frame.nose
    # Nose below the eyes, mouth below the nose, at about human distances; otherwise the points are wrong.
    if not (0.2 < nose_y < frame.mouth[1] < 2.0 and frame.mouth_width > 0.2):
        return "landmarks out of place"
    if abs(nose_x) > MAX_NOSE_OFFSET:
        return "face turned to the side"
    return None


@dataclass(frozen=True)
class MaskGeometry:
    """Where a mask lies on a face, in mask coordinates (s, t).

    t runs from the mask's top edge (0) to its bottom edge (1), at its
    centre; s from the mask's left side (-1) through its centre line (0) to
    its right side (1). Each of left, ridge and right is a face-frame x at the
    top and at the bottom, joined by a straight line; a turned head puts the
    ridge off centre, which makes the near half of the mask wider, as in a
    photo.
    """

    frame: FaceFrame
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
        return self.frame.to_image(x, self.top + t * (self.bottom - self.top))

    def to_mask(self, points):
        """Mask coordinates (s, t) of image points (..., 2): the inverse of to_image."""
        x, y = self.frame.to_face(points)
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
    return mask_geometry_of_frame(face_frame(landmarks), placement, rng)


def mask_geometry_of_frame(frame, placement="correct", rng=None):
    """mask_geometry for a face given by its FaceFrame."""
    nose_y, mouth_y, chin_y = frame.nose[1], frame.mouth[1], frame.chin

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
    centre = frame.outline_centre
    widths = [frame.half_width(y) * (1 + vary(0.04)) for y in (top, bottom)]
    left = tuple(centre - w for w in widths)
    right = tuple(centre + w for w in widths)
    # The ridge follows the nose, but never so close to a side that one half of the mask vanishes.
    ridge = tuple(float(np.clip(frame.ridge(y), lo + 0.25 * w, hi - 0.25 * w))
                  for y, lo, hi, w in zip((top, bottom), left, right, widths))
    return MaskGeometry(frame, top, bottom, left, ridge, right)


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
    frame = geometry.frame
    paths = []
    for side in (-1, 1):
        ear_x = frame.outline_centre + side * FACE_HALF_WIDTH * 1.02
        for (corner_s, corner_t), ear_y in zip(OUTLINES[shape].corners(), (0.45, 0.8)):
            start = frame.to_face(geometry.to_image(side * corner_s, corner_t))
            end = np.array([ear_x, frame.nose[1] * ear_y])
            # A slack elastic: a quadratic curve bowed outwards, towards the ear's side.
            bend = np.array([end[0] + side * 0.03, (start[1] + end[1]) / 2])
            u = np.linspace(0, 1, 16)[:, None]
            curve = (1 - u) ** 2 * np.array(start) + 2 * u * (1 - u) * bend + u**2 * end
            paths.append(frame.to_image(curve[:, 0], curve[:, 1]))
    return paths


@dataclass(frozen=True)
class MaskStyle:
    """What a mask looks like, apart from where it sits."""

    shape: str
    colour: tuple  # BGR of the fabric
    pattern: str = "plain"
    pattern_colours: tuple = ()  # two BGR colours for stripes, dots and prints
    pattern_size: float = 0.25  # period of stripes and dots, in eye distances
    pattern_angle: float = 0.0  # direction of stripes, degrees
    print_seed: int = 0  # seed of a printed texture, so the print is part of the style
    loop_colour: tuple = (235, 235, 235)
    ear_loops: bool = True


def _jittered(rng, colour, spread=12):
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in colour)


def random_style(rng, dark=False):
    """A MaskStyle drawn at random, weighted towards what people wear; ``dark`` picks a dark fabric."""
    shape = SHAPES[rng.choice(len(SHAPES), p=SHAPE_CHANCES)]
    colours = DARK_COLOURS if dark else SHAPE_COLOURS[shape]
    colour_name = colours[rng.integers(len(colours))]
    pattern = PATTERNS[rng.choice(len(PATTERNS), p=PATTERN_CHANCES[shape])]
    others = [name for name in COLOURS if name != colour_name]
    pattern_colours = tuple(_jittered(rng, COLOURS[others[i]]) for i in rng.choice(len(others), 2, replace=False))
    # Surgical and KN95 masks have white elastic; cloth masks often have loops of their own fabric.
    cloth_loops = shape == "cloth" and rng.random() < 0.5
    colour = _jittered(rng, COLOURS[colour_name])
    return MaskStyle(
        shape=shape,
        colour=colour,
        pattern=pattern,
        pattern_colours=pattern_colours,
        pattern_size=float(rng.uniform(0.12, 0.35)),
        pattern_angle=float(rng.choice([0.0, 90.0, 45.0, -45.0])),
        print_seed=int(rng.integers(2**31)),
        loop_colour=colour if cloth_loops else _jittered(rng, (235, 235, 235)),
        ear_loops=shape != "cloth" or rng.random() < 0.8,
    )


# Drawing helpers shared by the masks and the other objects.


def _region(points, shape, margin):
    """The pixel box (x0, y0, x1, y1) around ``points`` plus ``margin``, inside an image of ``shape``; None if empty."""
    low = np.floor(points.min(axis=0) - margin).astype(int)
    high = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    x0, y0 = max(0, low[0]), max(0, low[1])
    x1, y1 = min(shape[1], high[0]), min(shape[0], high[1])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _pixel_grid(region):
    """Image coordinates (h, w, 2) of every pixel of ``region``."""
    x0, y0, x1, y1 = region
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return np.stack([xs, ys], axis=-1).astype(np.float64)


def _fill(region, polygons):
    """The coverage (h, w) of ``region`` by image-pixel polygons: anti-aliased, at sub-pixel precision."""
    x0, y0, x1, y1 = region
    canvas = np.zeros((y1 - y0, x1 - x0), np.float32)
    for polygon in polygons:  # one at a time: a single fillPoly leaves overlaps of polygons empty
        fixed = np.round((np.asarray(polygon) - (x0, y0)) * 16).astype(np.int32)
        cv2.fillPoly(canvas, [fixed], 1.0, cv2.LINE_AA, shift=4)
    return canvas


def _smoothstep(low, high, value):
    x = np.clip((value - low) / (high - low), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _turn(points, degrees):
    """Points (n, 2) turned by ``degrees`` about the origin (clockwise on screen, where y points down)."""
    turn = math.radians(degrees)
    return np.asarray(points, np.float64) @ np.array([[math.cos(turn), math.sin(turn)],
                                                      [-math.sin(turn), math.cos(turn)]])


def _ellipse_xy(centre, axes, degrees=0.0, count=48):
    """Points (count, 2) of an ellipse: centre, half axes, turned by ``degrees``."""
    a = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.asarray(centre) + _turn(np.stack([axes[0] * np.cos(a), axes[1] * np.sin(a)], axis=1), degrees)


def _rounded_rectangle_xy(centre, size, radius, degrees=0.0, count=8):
    """Points of a rectangle with rounded corners: centre, (width, height), corner radius, turn."""
    half_w, half_h = size[0] / 2 - radius, size[1] / 2 - radius
    points = []
    for (cx, cy), start in (((half_w, half_h), 0), ((-half_w, half_h), 90), ((-half_w, -half_h), 180),
                            ((half_w, -half_h), 270)):
        a = np.radians(np.linspace(start, start + 90, count))
        points += list(zip(cx + radius * np.cos(a), cy + radius * np.sin(a)))
    return np.asarray(centre) + _turn(points, degrees)


def _in_image(frame, points):
    """Image pixels of face-frame points (n, 2)."""
    return frame.to_image(points[:, 0], points[:, 1])


def _ellipse(frame, centre, axes, degrees=0.0):
    """Image points of an ellipse given in the face frame."""
    return _in_image(frame, _ellipse_xy(centre, axes, degrees))


def _exposure(image, frame):
    """How bright the photo is, from the brightest tenth of the face (eye whites, highlights).

    Skin tone hardly moves it, so a white mask on a dark face stays white,
    while the same mask in a dim photo gets dim.
    """
    region = _face_region(image, frame)
    if region is None:
        return 1.0
    x0, y0, x1, y1 = region
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    return float(np.clip((np.percentile(grey, 90) / 200.0) ** 0.6, 0.5, 1.15))


def _face_region(image, frame):
    """The pixel box of the face from the brows to the chin, or None when it is outside the image."""
    corners = frame.to_image([-0.9, 0.9, -0.9, 0.9], [-0.4, -0.4, frame.chin, frame.chin])
    return _region(corners, image.shape, 0)


def _photo_blur(image, frame):
    """How blurred the photo is, as the sigma in pixels of a Gaussian that would blur a crisp drawing as much.

    Blurring an edge of blur s by 1 more pixel lowers its gradient by the
    factor s / sqrt(s^2 + 1); the strongest gradients of the face, before and
    after, give that factor and so s. A crisp anti-aliased drawing itself
    measures about 0.7, which is taken off.
    """
    region = _face_region(image, frame)
    if region is None:
        return 0.5
    x0, y0, x1, y1 = region
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)

    def edge_strength(picture):
        gradient = np.hypot(cv2.Sobel(picture, cv2.CV_32F, 1, 0), cv2.Sobel(picture, cv2.CV_32F, 0, 1))
        return float(np.percentile(gradient, 95))

    ratio = min(0.98, edge_strength(cv2.GaussianBlur(grey, (0, 0), 1.0)) / max(edge_strength(grey), 1e-3))
    photo = ratio / math.sqrt(1 - ratio**2)
    return max(0.4, math.sqrt(max(0.0, photo**2 - 0.7**2)))


def _greyscale(image, frame):
    """Whether the photo is black and white (its face's channels all but equal)."""
    region = _face_region(image, frame)
    if region is None:
        return False
    x0, y0, x1, y1 = region
    pixels = image[y0:y1, x0:x1]
    spread = cv2.max(cv2.absdiff(pixels[..., 0], pixels[..., 1]), cv2.absdiff(pixels[..., 1], pixels[..., 2]))
    return float((spread > 6).mean()) <= 0.05  # JPEG colour noise leaves a few pixels apart


def _scene_light(image, region, frame, alpha, strength=0.6):
    """Per-pixel light of the photo under the drawing: its blurred luminance, relative to its median.

    Blurred over about a third of an eye distance, it keeps the light falling
    across the face (one cheek in shadow) but not the mouth or nostrils.
    """
    x0, y0, x1, y1 = region
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), max(1.0, 0.35 * frame.scale))
    inside = alpha > 0.5
    reference = float(np.median(grey[inside])) if inside.any() else float(grey.mean())
    # Bounded: where the drawing leaves the face, the luminance is the background's, not light.
    return np.clip(grey / max(reference, 1.0), 0.6, 1.35) ** strength


def _finish(out, source, region, frame, colour, alpha, rng, shadow=0.3):
    """Light, soften and blend a drawn layer (colour, alpha) into ``out`` over ``region``.

    The layer takes the photo's light, is blurred as much as the photo (a
    crisp drawing on a soft photo would give it away), and casts a soft
    shadow down the face so that it stands in front of it.
    """
    x0, y0, x1, y1 = region
    colour = colour * _scene_light(source, region, frame, alpha)[..., None]
    if _greyscale(source, frame):  # a colour mask on a black-and-white photo would give it away
        colour = np.repeat(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)
    blur = _photo_blur(source, frame) * rng.uniform(0.8, 1.2)
    colour = cv2.GaussianBlur(colour, (0, 0), blur)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, blur))
    below = out[y0:y1, x0:x1].astype(np.float32)
    if shadow:
        step = 0.05 * frame.scale * frame.y_axis
        moved = cv2.warpAffine(alpha, np.float32([[1, 0, step[0]], [0, 1, step[1]]]), alpha.shape[::-1])
        cast = cv2.GaussianBlur(moved, (0, 0), max(1.0, 0.06 * frame.scale))
        below *= (1 - shadow * cast * (1 - alpha))[..., None]
    blended = below * (1 - alpha[..., None]) + colour * alpha[..., None]
    out[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _layer_margin(frame):
    # Room for the blurred edge and the shadow beside the drawn shape.
    return 0.2 * frame.scale + 3


# The mask itself.


def _fabric(style, fabric_x, fabric_y):
    """The fabric's printed colour (h, w, 3) at fabric coordinates (eye distances from the top centre)."""
    colour = np.full(fabric_x.shape + (3,), style.colour, np.float32)
    if style.pattern == "stripes":
        turn = math.radians(style.pattern_angle)
        across = -fabric_x * math.sin(turn) + fabric_y * math.cos(turn)
        colour[(across / style.pattern_size) % 1 < 0.45] = style.pattern_colours[0]
    elif style.pattern == "dots":
        column = np.floor(fabric_x / style.pattern_size)
        # Every other column is moved half a period down: the staggered dots of printed fabric.
        dx = (fabric_x / style.pattern_size) % 1 - 0.5
        dy = (fabric_y / style.pattern_size + 0.5 * (column % 2)) % 1 - 0.5
        colour[dx * dx + dy * dy < 0.22**2] = style.pattern_colours[0]
    elif style.pattern == "print":
        # A blotchy print (camouflage, flowers seen small): smooth noise cut at two levels into three colours.
        texture = np.random.default_rng(style.print_seed).random((12, 12)).astype(np.float32)
        cell = 0.3
        field = cv2.remap(texture, (fabric_x / cell).astype(np.float32), (fabric_y / cell).astype(np.float32),
                          cv2.INTER_CUBIC, borderMode=cv2.BORDER_WRAP)
        colour[field > 0.62] = style.pattern_colours[0]
        colour[field < 0.32] = style.pattern_colours[1]
    return colour


def _relief(style, s, t, height, edge, light):
    """Brightness (h, w) that gives the flat drawing its shape: sides, chin, pleats, seams, hems.

    ``height`` is the mask's height and ``edge`` each pixel's distance to its
    outline, in eye distances; ``light`` (about -0.2..0.2) says from which
    side the light comes.
    """
    across = s * FACE_HALF_WIDTH  # eye distances from the centre line
    shade = 1 - 0.32 * np.clip(np.abs(s), 0, 1.2) ** 2.5  # the mask turns away towards the cheeks
    shade *= 1 + light * np.clip(s, -1, 1)
    shade *= 1 - 0.3 * _smoothstep(0.78, 1.05, t)  # and under the chin
    if style.shape == "surgical":
        for pleat in (0.3, 0.5, 0.7):
            # Each fold: a lit lip just above, a dark line where the layer above ends, a soft shadow below.
            d = (t - pleat - 0.05 * s**2) * height / 0.03
            shade *= 1 + 0.06 * np.exp(-((d + 1.6) ** 2)) - 0.2 * np.exp(-(d**2)) - 0.05 * np.exp(-((d - 2) ** 2) / 4)
    elif style.shape == "kn95":
        # Two panels folded at the centre seam: one faces the light more than the other.
        shade *= 1 + 0.12 * np.tanh(s / 0.05) * (1 if light >= 0 else -1)
        shade *= 1 - 0.35 * np.exp(-((across / 0.025) ** 2))
    elif style.shape == "cloth":
        shade *= 1 - 0.15 * np.exp(-((across / 0.03) ** 2))  # the seam down the middle
    # A hem or welded band along the edge, with a stitched line on its inner side.
    band = 0.07 if style.shape != "cloth" else 0.05
    shade *= np.where(edge < band, 0.93, 1.0) * (1 - 0.15 * np.exp(-(((edge - band) / 0.012) ** 2)))
    return shade


def draw_mask(image, landmarks, style, placement, rng):
    """A copy of ``image`` with a mask of ``style`` drawn on the face of ``landmarks`` as ``placement``."""
    geometry = mask_geometry(landmarks, placement, rng)
    frame = geometry.frame
    outline = mask_outline(geometry, style.shape)
    out = image.copy()
    region = _region(outline, image.shape, _layer_margin(frame))
    if region is None:
        return out
    s, t = geometry.to_mask(_pixel_grid(region))
    alpha = _fill(region, [outline])
    edge = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3) / frame.scale
    colour = _fabric(style, s * FACE_HALF_WIDTH, t * geometry.height)
    colour *= _relief(style, s, t, geometry.height, edge, rng.uniform(-0.2, 0.2))[..., None]
    weave = 0.06 if style.shape == "cloth" else 0.025
    colour *= (1 + cv2.GaussianBlur(rng.normal(0, weave, s.shape).astype(np.float32), (0, 0), 0.6))[..., None]
    exposure = _exposure(image, frame)
    colour *= exposure
    _finish(out, image, region, frame, colour.astype(np.float32), alpha, rng)
    if style.ear_loops:
        _draw_ear_loops(out, image, geometry, style, exposure, rng)
    return out


def _draw_ear_loops(out, source, geometry, style, exposure, rng):
    """Draw the elastic loops into ``out``: lit, blurred and blended like the mask."""
    frame = geometry.frame
    paths = ear_loop_paths(geometry, style.shape)
    region = _region(np.concatenate(paths), out.shape, _layer_margin(frame))
    if region is None:
        return
    alpha = np.zeros((region[3] - region[1], region[2] - region[0]), np.float32)
    thickness = max(1, int(round(0.035 * frame.scale)))
    for path in paths:
        fixed = np.round((path - region[:2]) * 16).astype(np.int32)
        cv2.polylines(alpha, [fixed], False, 1.0, thickness, cv2.LINE_AA, shift=4)
    colour = np.full(alpha.shape + (3,), np.array(style.loop_colour) * 0.9 * exposure, np.float32)
    _finish(out, source, region, frame, colour, alpha, rng, shadow=0.15)


# Things over the mouth that are not masks: the hard negatives of `without_mask`.


def _skin_colour(image, frame):
    """The face's own skin colour: the median of both cheeks, close beside the nose.

    Close, so that on a turned face neither patch falls on the background.
    """
    patches = [_ellipse(frame, (frame.nose[0] + dx, frame.nose[1] * 0.85), (0.1, 0.1)) for dx in (-0.3, 0.3)]
    region = _region(np.concatenate(patches), image.shape, 1)
    if region is not None:
        x0, y0, x1, y1 = region
        pixels = image[y0:y1, x0:x1][_fill(region, patches) > 0.5]
        if len(pixels):
            return np.median(pixels, axis=0).astype(np.float64)
    return np.array(TYPICAL_SKIN, np.float64)


def draw_hand(image, landmarks, rng, skin=None):
    """A copy of ``image`` with a hand over the mouth, back to the camera, in the face's own skin colour.

    Either the fingers point up from a palm on the chin, or they reach
    across the mouth from one side; the fingertips stay under the nose.
    ``skin`` (BGR) is the face's skin colour when the cheeks are hidden (by a
    mask the hand is adjusting); by default it is read from the cheeks.
    """
    frame = face_frame(landmarks)
    nose_y, mouth_y = frame.nose[1], frame.mouth[1]
    width = rng.uniform(0.19, 0.24)  # of one finger, in eye distances
    lengths = np.array((0.9, 1.0, 0.95, 0.75)) * rng.uniform(0.85, 1.05)  # index, middle, ring, little
    reach = nose_y + (mouth_y - nose_y) * rng.uniform(0.25, 0.55)  # the highest fingertip, under the nose
    reaching_across = rng.random() < 0.5
    if not reaching_across:
        pointing = -90 + rng.uniform(-20, 20)  # up the face
        knuckles = np.array([frame.mouth[0] + rng.uniform(-0.2, 0.2), reach + lengths.max()])
    else:
        side = 1 if rng.random() < 0.5 else -1  # the side the hand comes from (+1: the image's right)
        droop = rng.uniform(-5, 20)  # positive: the wrist below the fingers, so the palm stays off the eyes
        pointing = 180 + droop if side > 0 else -droop
        tips_x = frame.mouth[0] - side * (frame.mouth_width / 2 + rng.uniform(0.1, 0.35))
        knuckles = np.array([tips_x + side * lengths.max(), reach + 2 * width])
    turn = math.radians(pointing)
    along = np.array([math.cos(turn), math.sin(turn)])  # from the knuckles towards the fingertips
    across = np.array([-along[1], along[0]])

    def to_image(hand_xy):  # hand coordinates (along, across) in eye distances -> image pixels
        face = knuckles + hand_xy @ np.stack([along, across])
        return frame.to_image(face[:, 0], face[:, 1])

    # The thumb lies beside the index finger: below the fingers when they reach across (towards the
    # chin, away from the eyes), on either side when they point up.
    thumb_side = (1 if across[1] > 0 else -1) if reaching_across else (1 if rng.random() < 0.5 else -1)
    offsets = thumb_side * (1.5 - np.arange(4)) * width  # index finger first, next to the thumb
    # Each finger starts well inside the palm, so no gap shows where it narrows at its root.
    fingers = [to_image(_ellipse_xy((length / 2 - 0.15, c), (length / 2 + 0.15, width * 0.56)))
               for length, c in zip(lengths, offsets)]
    nails = [to_image(_ellipse_xy((length - 0.1, c), (0.07, width * 0.3))) for length, c in zip(lengths, offsets)]
    palm = to_image(_rounded_rectangle_xy((-0.36, 0.0), (0.9, 4.3 * width), 0.2))
    thumb = to_image(_ellipse_xy((-0.3, thumb_side * 2.6 * width), (0.34, 0.11), thumb_side * 40))
    out = image.copy()
    region = _region(np.concatenate(fingers + [palm, thumb]), image.shape, _layer_margin(frame))
    if region is None:
        return out
    alpha = _fill(region, fingers + [palm, thumb])
    # Each finger is a cylinder (lit along its middle, dark in the creases); the palm is a flat dome.
    x, y = frame.to_face(_pixel_grid(region))
    relative = np.stack([x - knuckles[0], y - knuckles[1]], axis=-1)
    hand_a, hand_c = relative @ along, relative @ across
    in_finger = np.clip(hand_c / width + 2, 0, 4) % 1 - 0.5
    finger_shade = 1 - 0.3 * (2 * in_finger) ** 4
    palm_shade = 1 - 0.12 * np.clip(((hand_a + 0.38) / 0.43) ** 2 + (hand_c / (2.15 * width)) ** 2, 0, 1)
    shade = np.where(hand_a > 0.05, finger_shade, palm_shade)
    inner = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3) / frame.scale
    shade *= 0.8 + 0.2 * np.clip(inner / 0.05, 0, 1)  # the hand's outline turns away from the light
    skin = (_skin_colour(image, frame) if skin is None else np.asarray(skin, np.float64)) * rng.uniform(0.96, 1.04, 3) * (0.97, 0.99, 1.03)  # hands are a little redder
    colour = skin.astype(np.float32) * shade[..., None].astype(np.float32)
    nail = _fill(region, nails) * 0.45
    colour = colour * (1 - nail[..., None]) + np.minimum(skin * 1.1 + 25, 255).astype(np.float32) * nail[..., None]
    colour *= (1 + rng.normal(0, 0.02, alpha.shape).astype(np.float32))[..., None]
    _finish(out, image, region, frame, colour.astype(np.float32), alpha, rng, shadow=0.35)
    return out


def skin_colour(image, landmarks):
    """The face's skin colour (BGR), read from the cheeks beside the nose."""
    return _skin_colour(image, face_frame(landmarks))


def draw_phone(image, landmarks, rng):
    """A copy of ``image`` with a phone held up in front of the chin, screen or back to the camera."""
    frame = face_frame(landmarks)
    size = (rng.uniform(0.65, 0.8), rng.uniform(1.3, 1.6))
    tilt = rng.uniform(-20, 20)
    top = frame.mouth[1] + (frame.chin - frame.mouth[1]) * rng.uniform(0.1, 0.5)
    centre = np.array([frame.mouth[0] + rng.uniform(-0.35, 0.35), top + size[1] / 2])
    body = _in_image(frame, _rounded_rectangle_xy(centre, size, 0.1, tilt))
    out = image.copy()
    region = _region(body, image.shape, _layer_margin(frame))
    if region is None:
        return out
    alpha = _fill(region, [body])
    x, y = frame.to_face(_pixel_grid(region))
    along = -(x - centre[0]) * math.sin(math.radians(tilt)) + (y - centre[1]) * math.cos(math.radians(tilt))
    if rng.random() < 0.5:
        # The screen: dark glass with a diagonal reflection, inside a thin bezel.
        colour = np.full(alpha.shape + (3,), (20, 20, 22), np.float32)
        glass = _rounded_rectangle_xy(centre, (size[0] - 0.08, size[1] - 0.1), 0.07, tilt)
        screen = _fill(region, [_in_image(frame, glass)])
        reflection = _smoothstep(-0.1, 0.3, x - centre[0] + 0.6 * along)
        glow = np.array(rng.uniform(30, 110, 3), np.float32)
        colour += (screen * (0.3 + 0.7 * reflection))[..., None] * glow
    else:
        # The back: the case's colour and a camera block with two lenses in a top corner.
        case = _jittered(rng, PHONE_COLOURS[rng.integers(len(PHONE_COLOURS))], 15)
        colour = np.full(alpha.shape + (3,), case, np.float32)
        corner = centre + _turn([(-size[0] * 0.22, -size[1] * 0.33)], tilt)[0]
        block = _fill(region, [_in_image(frame, _rounded_rectangle_xy(corner, (0.26, 0.32), 0.06, tilt))])
        lenses = _fill(region, [_ellipse(frame, corner + _turn([(0, dy)], tilt)[0], (0.055, 0.055))
                                for dy in (-0.07, 0.07)])
        colour = colour * (1 - 0.25 * block[..., None])
        colour = colour * (1 - lenses[..., None]) + lenses[..., None] * np.float32(10)
    colour *= (0.85 + 0.15 * _smoothstep(-0.8, 0.8, -along))[..., None]  # lit from above
    colour *= _exposure(image, frame)
    _finish(out, image, region, frame, colour.astype(np.float32), alpha, rng)
    return out


def draw_cup(image, landmarks, rng):
    """A copy of ``image`` with a cup or mug held in front of the chin, its handle to one side."""
    frame = face_frame(landmarks)
    rim_y = frame.mouth[1] + (frame.chin - frame.mouth[1]) * rng.uniform(0.05, 0.4)
    rim_half = rng.uniform(0.42, 0.55)
    height = rng.uniform(0.95, 1.25)
    base_half = rim_half * rng.uniform(0.75, 0.95)
    cx = frame.mouth[0] + rng.uniform(-0.25, 0.25)
    side = 1 if rng.random() < 0.5 else -1
    ellipse_h = 0.12 * rim_half
    body = np.concatenate([
        _ellipse(frame, (cx, rim_y), (rim_half, ellipse_h))[24:],  # the rim's far half, left to right
        frame.to_image([cx + rim_half, cx + base_half, cx - base_half, cx - rim_half],
                       [rim_y, rim_y + height, rim_y + height, rim_y]),
    ])
    handle_centre = (cx + side * (rim_half + 0.1), rim_y + height * 0.42)
    handle = _ellipse(frame, handle_centre, (0.2, height * 0.28))
    hole = _ellipse(frame, handle_centre, (0.1, height * 0.18))
    out = image.copy()
    region = _region(np.concatenate([body, handle]), image.shape, _layer_margin(frame))
    if region is None:
        return out
    alpha = np.clip(_fill(region, [body]) + _fill(region, [handle]) - _fill(region, [hole]), 0, 1)
    x, y = frame.to_face(_pixel_grid(region))
    across = np.clip((x - cx) / rim_half, -1.2, 1.2)
    colour = np.full(alpha.shape + (3,), _jittered(rng, CUP_COLOURS[rng.integers(len(CUP_COLOURS))], 15), np.float32)
    # A cylinder lit from one side, with a glossy streak; the opening at the top is a darker ellipse.
    light = rng.uniform(-0.5, 0.5)
    shade = (1 - 0.3 * across**2) * (1 + 0.5 * np.exp(-(((across - light) / 0.12) ** 2)))
    rim = _fill(region, [_ellipse(frame, (cx, rim_y), (rim_half, ellipse_h))])
    shade *= 1 - 0.25 * rim
    colour *= shade[..., None]
    if rng.random() < 0.4:  # a printed band round the middle
        band = np.abs(y - (rim_y + height * 0.5)) < height * 0.12
        colour[band] = np.array(_jittered(rng, CUP_COLOURS[rng.integers(len(CUP_COLOURS))], 20)) * shade[band][:, None]
    colour *= _exposure(image, frame)
    _finish(out, image, region, frame, colour.astype(np.float32), alpha, rng)
    return out


def draw_beard(image, landmarks, rng):
    """A copy of ``image`` with a beard: dark hair along the jaw, on the chin and over the lip, the lips left bare."""
    frame = face_frame(landmarks)
    nose_y, mouth_y, chin_y = frame.nose[1], frame.mouth[1], frame.chin
    centre, ridge = frame.outline_centre, frame.ridge(mouth_y)
    half_mouth = frame.mouth_width / 2
    moustache_top = nose_y + (mouth_y - nose_y) * rng.uniform(0.15, 0.3)
    sideburn_y = nose_y * rng.uniform(0.55, 0.8)

    def jaw(side):  # face-frame points from the sideburn down to the chin
        return [(centre + side * frame.half_width(nose_y) * 0.98, sideburn_y),
                (centre + side * frame.half_width(mouth_y) * 0.97, mouth_y),
                (centre + side * frame.half_width(chin_y) * 0.7, chin_y - 0.15)]

    def cheek(side):  # the beard's upper edge, from the moustache's end out past the mouth corner
        return [(ridge + side * half_mouth * 0.7, moustache_top), (ridge + side * (half_mouth + 0.12), mouth_y - 0.1)]

    # Round the jaw from one sideburn to the other, then back along the cheeks and over the lip.
    path = (jaw(1) + [(ridge, chin_y + 0.04)] + jaw(-1)[::-1] + cheek(-1)[::-1]
            + [(ridge, moustache_top - 0.02)] + cheek(1))
    xs, ys = np.array(path).T
    outline = frame.to_image(xs, ys)
    out = image.copy()
    region = _region(outline, image.shape, _layer_margin(frame))
    if region is None:
        return out
    lips = _fill(region, [_ellipse(frame, (ridge, mouth_y + 0.03), (half_mouth * 1.05, 0.12))])
    area = cv2.GaussianBlur(_fill(region, [outline]), (0, 0), max(1.0, 0.07 * frame.scale)) * (1 - lips)
    # Hair: fine noise in clumps; a stubble is thin, a full beard dense.
    density = rng.uniform(0.35, 0.55) if rng.random() < 0.5 else rng.uniform(0.7, 0.9)
    fine = cv2.GaussianBlur(rng.random(area.shape).astype(np.float32), (0, 0), max(0.5, 0.01 * frame.scale))
    hair = np.clip((fine - 0.5) * 4 + 0.5, 0, 1)
    alpha = area * np.clip(density * (0.5 + hair), 0, 1)
    colour = np.full(alpha.shape + (3,), _jittered(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 8), np.float32)
    colour *= (0.8 + 0.4 * hair)[..., None]
    colour *= _exposure(image, frame)
    _finish(out, image, region, frame, colour, alpha.astype(np.float32), rng, shadow=0.0)
    return out


NEGATIVE_DRAWERS = {"hand": draw_hand, "phone": draw_phone, "cup": draw_cup, "beard": draw_beard}
# How often each placement or not-mask is chosen, relative to the others of its kind: a hand is the
# commonest thing over a mouth in photos.
WEIGHTS = {"hand": 2.0}
# A mask or thing is drawn only where at least this share of it is inside the photo: on a tight crop a
# mask on the chin falls mostly below the picture, and what remains does not show how it is worn.
MIN_VISIBLE_SHARE = 0.5


def draw_negative(image, landmarks, rng, kind=None):
    """A copy of ``image`` with a thing over the lower face that is not a mask; returns (image, kind).

    Without ``kind``, one that fits in the photo is chosen (a hand over the mouth always does).
    """
    if kind is None:
        kind = choose_fitting(rng, NEGATIVES, image.shape, landmarks) or "hand"
    return NEGATIVE_DRAWERS[kind](image, landmarks, rng), kind


def visible_share(image_shape, polygon):
    """The share of a polygon's area (image pixels) that lies inside an image of ``image_shape``."""
    low = np.floor(polygon.min(axis=0)).astype(int)
    high = np.ceil(polygon.max(axis=0)).astype(int)
    canvas = np.zeros((high[1] - low[1] + 1, high[0] - low[0] + 1), np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon - low).astype(np.int32)], 1)
    ys, xs = np.nonzero(canvas)
    xs, ys = xs + low[0], ys + low[1]
    inside = (xs >= 0) & (xs < image_shape[1]) & (ys >= 0) & (ys < image_shape[0])
    return float(inside.mean()) if len(xs) else 0.0


def _typical_area(frame, kind):
    """Image polygon of where a placement's mask, or a not-mask, mostly lies on this face."""
    if kind in PLACEMENTS:
        return mask_outline(mask_geometry_of_frame(frame, kind), "surgical")
    nose_y, mouth_y, chin_y, mouth_x = frame.nose[1], frame.mouth[1], frame.chin, frame.mouth[0]
    x_from, x_to, y_from, y_to = {
        "hand": (mouth_x - 0.6, mouth_x + 0.6, nose_y + 0.4 * (mouth_y - nose_y), mouth_y + 0.5),
        "phone": (mouth_x - 0.4, mouth_x + 0.4, mouth_y + 0.3 * (chin_y - mouth_y), chin_y + 0.7),
        "cup": (mouth_x - 0.5, mouth_x + 0.5, mouth_y + 0.2 * (chin_y - mouth_y), chin_y + 0.5),
        "beard": (frame.outline_centre - 0.9, frame.outline_centre + 0.9, mouth_y - 0.2, chin_y),
    }[kind]
    return frame.to_image([x_from, x_to, x_to, x_from], [y_from, y_from, y_to, y_to])


def fitting_kinds(image_shape, landmarks, kinds):
    """Those of ``kinds`` (placements or not-masks) that would show enough inside the photo."""
    frame = face_frame(landmarks)
    return [kind for kind in kinds if visible_share(image_shape, _typical_area(frame, kind)) >= MIN_VISIBLE_SHARE]


def choose_fitting(rng, kinds, image_shape, landmarks):
    """One of ``kinds`` that fits in the photo, drawn at random by WEIGHTS; None when none fits."""
    fitting = fitting_kinds(image_shape, landmarks, kinds)
    if not fitting:
        return None
    weights = np.array([WEIGHTS.get(kind, 1.0) for kind in fitting])
    return fitting[rng.choice(len(fitting), p=weights / weights.sum())]


# Other views of the same face: turned, seen from above or below, cut by the picture's edge.
# The source photos are almost all frontal (95 % turn the nose less than 0.3 eye distances off
# the eyes' midpoint), while real cameras see faces from every side. A face is turned after its
# mask is drawn, so the mask bends round the cheek with the skin under it.

# The head as a cylinder seen from afar: its radius across, in eye distances (a little more than
# the cheeks' half width), and its radius from top to bottom, in brow-to-chin distances.
HEAD_RADIUS = 1.2
HEAD_HEIGHT_RADIUS = 1.5
MAX_YAW = 30.0  # degrees; further round, YuNet often misses the face or places the far eye wrongly
MAX_PITCH = 12.0


def _turned_axis(positions, centre, radius, degrees):
    """Where points on a cylinder of ``radius`` about ``centre`` show after it turns by ``degrees``.

    Seen from afar, a point at angle a from the front shows at centre +
    radius sin(a); turning adds to a. Outside the cylinder nothing moves,
    and a band at its edge blends the two, so the background stays put.
    """
    offset = np.clip((positions - centre) / radius, -1.0, 1.0)
    # Past the far edge the angle is not clipped: the sine turns back, so the strip of head that
    # comes into view mirrors its neighbour instead of repeating one column of pixels.
    moved = centre + radius * np.sin(np.arcsin(offset) + math.radians(degrees))
    weight = np.clip((1.0 - np.abs(positions - centre) / radius) / 0.2, 0.0, 1.0)
    return positions + weight * (moved - positions)


def turn_head(image, landmarks, yaw=0.0, pitch=0.0):
    """A copy of ``image`` with the face turned ``yaw`` degrees to the image's right and ``pitch`` down,
    and the landmarks moved with it.

    The face's own frame must be upright (little roll); the warp is along the
    image's axes. Pixels are looked up from where each one came from, so the
    near cheek widens and the far one narrows as in a photo of a turned head.
    """
    frame = face_frame(landmarks)
    height, width = image.shape[:2]
    centre_x = frame.to_image(frame.outline_centre, 0.0)[0]
    centre_y = frame.to_image(0.0, frame.chin / 2)[1]
    radius_x, radius_y = HEAD_RADIUS * frame.scale, HEAD_HEIGHT_RADIUS * frame.scale * max(frame.chin / 2, 0.5)
    # The inverse map: each output pixel's source is found by turning back.
    map_x = _turned_axis(np.arange(width, dtype=np.float64), centre_x, radius_x, -yaw)
    map_y = _turned_axis(np.arange(height, dtype=np.float64), centre_y, radius_y, -pitch)
    grid_x = np.broadcast_to(map_x[None, :], (height, width)).astype(np.float32)
    grid_y = np.broadcast_to(map_y[:, None], (height, width)).astype(np.float32)
    # Mirrored at the border: a tight crop has no pixels beyond its edge, and repeating the last column
    # draws streaks no camera makes.
    turned = cv2.remap(image, grid_x, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    points = np.asarray(landmarks, np.float64).reshape(5, 2).copy()
    points[:, 0] = _turned_axis(points[:, 0], centre_x, radius_x, yaw)
    points[:, 1] = _turned_axis(points[:, 1], centre_y, radius_y, pitch)
    return turned, points


def face_box(landmarks):
    """The face's box (x1, y1, x2, y2), brows to chin and cheek to cheek, estimated from five landmarks."""
    frame = face_frame(landmarks)
    corners = frame.to_image([-FACE_HALF_WIDTH, FACE_HALF_WIDTH] * 2, [-0.6, -0.6, frame.chin, frame.chin])
    return (*corners.min(axis=0), *corners.max(axis=0))


def cut_close_up(image, landmarks, side, share):
    """The image cut on ``side`` (top, left or right) so that ``share`` of the face's box falls outside,
    as a camera close to a door cuts a face; the landmarks moved with the cut."""
    x1, y1, x2, y2 = face_box(landmarks)
    points = np.asarray(landmarks, np.float64).reshape(5, 2).copy()
    height, width = image.shape[:2]
    if side == "top":
        edge = int(np.clip(y1 + share * (y2 - y1), 0, height - 1))
        points[:, 1] -= edge
        return image[edge:], points
    if side == "left":
        edge = int(np.clip(x1 + share * (x2 - x1), 0, width - 1))
        points[:, 0] -= edge
        return image[:, edge:], points
    if side == "right":
        edge = int(np.clip(x2 - share * (x2 - x1), 1, width))
        return image[:, :edge], points
    raise ValueError(f"unknown side {side!r}; choose top, left or right")


def upright(landmarks, most_roll=0.25):
    """Whether the face's eye line is near level (the turning warp works along the image's axes)."""
    return abs(face_frame(landmarks).x_axis[1]) <= most_roll
