"""Negatives: things over the lower face that are not masks, and choosing what fits in the photo.

For faces without a mask, a hand (in the face's own skin colour), a phone,
a cup or a beard covers the mouth or chin: the hard negatives of
`without_mask`, which look like a mask to a model that has seen only bare
faces. A mask placement or a negative is chosen only where enough of it
shows inside the photo.
"""

import math

import cv2
import numpy as np

from mask_detector.synthetic.geometry import PLACEMENTS, face_axes, mask_geometry_on_axes, mask_outline
from mask_detector.synthetic.rendering import (
    coverage, ellipse, ellipse_xy, finish_layer, in_image, jittered, layer_margin, photo_exposure, pixel_box,
    pixel_grid, rounded_rectangle_xy, smoothstep, turn_points,
)

NEGATIVES = ("hand", "phone", "cup", "beard")
TYPICAL_SKIN = (120, 150, 190)  # BGR, for a face whose cheeks are outside the photo
HAIR_COLOURS = ((20, 22, 25), (25, 35, 50), (35, 50, 70), (60, 60, 62))
PHONE_COLOURS = ((25, 25, 25), (45, 45, 48), (225, 225, 228), (180, 120, 60), (70, 60, 150))
CUP_COLOURS = ((240, 240, 238), (160, 200, 225), (60, 60, 170), (150, 90, 40), (60, 140, 60))


def _skin_colour(image, axes):
    """The face's own skin colour: the median of both cheeks, close beside the nose.

    Close, so that on a turned face neither patch falls on the background.
    """
    patches = [ellipse(axes, (axes.nose[0] + dx, axes.nose[1] * 0.85), (0.1, 0.1)) for dx in (-0.3, 0.3)]
    region = pixel_box(np.concatenate(patches), image.shape, 1)
    if region is not None:
        x0, y0, x1, y1 = region
        pixels = image[y0:y1, x0:x1][coverage(region, patches) > 0.5]
        if len(pixels):
            return np.median(pixels, axis=0).astype(np.float64)
    return np.array(TYPICAL_SKIN, np.float64)


def _hand_placement(axes, rng):
    """(finger width, finger lengths, whether it reaches across, knuckles, the fingers' direction and the one
    across them) of a hand over the mouth of the face of ``axes``, in eye distances."""
    nose_y, mouth_y = axes.nose[1], axes.mouth[1]
    width = rng.uniform(0.19, 0.24)  # of one finger, in eye distances
    lengths = np.array((0.9, 1.0, 0.95, 0.75)) * rng.uniform(0.85, 1.05)  # index, middle, ring, little
    reach = nose_y + (mouth_y - nose_y) * rng.uniform(0.25, 0.55)  # the highest fingertip, under the nose
    reaching_across = rng.random() < 0.5
    if not reaching_across:
        pointing = -90 + rng.uniform(-20, 20)  # up the face
        knuckles = np.array([axes.mouth[0] + rng.uniform(-0.2, 0.2), reach + lengths.max()])
    else:
        side = 1 if rng.random() < 0.5 else -1  # the side the hand comes from (+1: the image's right)
        droop = rng.uniform(-5, 20)  # positive: the wrist below the fingers, so the palm stays off the eyes
        pointing = 180 + droop if side > 0 else -droop
        tips_x = axes.mouth[0] - side * (axes.mouth_width / 2 + rng.uniform(0.1, 0.35))
        knuckles = np.array([tips_x + side * lengths.max(), reach + 2 * width])
    turn = math.radians(pointing)
    along = np.array([math.cos(turn), math.sin(turn)])  # from the knuckles towards the fingertips
    across = np.array([-along[1], along[0]])
    return width, lengths, reaching_across, knuckles, along, across


def draw_hand(image, landmarks, rng, skin=None):
    """A copy of ``image`` with a hand over the mouth, back to the camera, in the face's own skin colour.

    Either the fingers point up from a palm on the chin, or they reach
    across the mouth from one side; the fingertips stay under the nose.
    ``skin`` (BGR) is the face's skin colour when the cheeks are hidden (by a
    mask the hand is adjusting); by default it is read from the cheeks.
    """
    axes = face_axes(landmarks)
    width, lengths, reaching_across, knuckles, along, across = _hand_placement(axes, rng)

    def to_image(hand_xy):  # hand coordinates (along, across) in eye distances -> image pixels
        face = knuckles + hand_xy @ np.stack([along, across])
        return axes.to_image(face[:, 0], face[:, 1])

    # The thumb lies beside the index finger: below the fingers when they reach across (towards the
    # chin, away from the eyes), on either side when they point up.
    thumb_side = (1 if across[1] > 0 else -1) if reaching_across else (1 if rng.random() < 0.5 else -1)
    offsets = thumb_side * (1.5 - np.arange(4)) * width  # index finger first, next to the thumb
    # Each finger starts well inside the palm, so no gap shows where it narrows at its root.
    fingers = [to_image(ellipse_xy((length / 2 - 0.15, c), (length / 2 + 0.15, width * 0.56)))
               for length, c in zip(lengths, offsets)]
    nails = [to_image(ellipse_xy((length - 0.1, c), (0.07, width * 0.3))) for length, c in zip(lengths, offsets)]
    palm = to_image(rounded_rectangle_xy((-0.36, 0.0), (0.9, 4.3 * width), 0.2))
    thumb = to_image(ellipse_xy((-0.3, thumb_side * 2.6 * width), (0.34, 0.11), thumb_side * 40))
    out = image.copy()
    region = pixel_box(np.concatenate(fingers + [palm, thumb]), image.shape, layer_margin(axes))
    if region is None:
        return out
    alpha = coverage(region, fingers + [palm, thumb])
    # Each finger is a cylinder (lit along its middle, dark in the creases); the palm is a flat dome.
    x, y = axes.to_face(pixel_grid(region))
    relative = np.stack([x - knuckles[0], y - knuckles[1]], axis=-1)
    hand_a, hand_c = relative @ along, relative @ across
    in_finger = np.clip(hand_c / width + 2, 0, 4) % 1 - 0.5
    finger_shade = 1 - 0.3 * (2 * in_finger) ** 4
    palm_shade = 1 - 0.12 * np.clip(((hand_a + 0.38) / 0.43) ** 2 + (hand_c / (2.15 * width)) ** 2, 0, 1)
    shade = np.where(hand_a > 0.05, finger_shade, palm_shade)
    inner = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3) / axes.scale
    shade *= 0.8 + 0.2 * np.clip(inner / 0.05, 0, 1)  # the hand's outline turns away from the light
    face_skin = _skin_colour(image, axes) if skin is None else np.asarray(skin, np.float64)
    skin = face_skin * rng.uniform(0.96, 1.04, 3) * (0.97, 0.99, 1.03)  # hands are a little redder
    colour = skin.astype(np.float32) * shade[..., None].astype(np.float32)
    nail = coverage(region, nails) * 0.45
    colour = colour * (1 - nail[..., None]) + np.minimum(skin * 1.1 + 25, 255).astype(np.float32) * nail[..., None]
    colour *= (1 + rng.normal(0, 0.02, alpha.shape).astype(np.float32))[..., None]
    finish_layer(out, image, region, axes, colour.astype(np.float32), alpha, rng, shadow=0.35)
    return out


def skin_colour(image, landmarks):
    """The face's skin colour (BGR), read from the cheeks beside the nose."""
    return _skin_colour(image, face_axes(landmarks))


def draw_phone(image, landmarks, rng):
    """A copy of ``image`` with a phone held up in front of the chin, screen or back to the camera."""
    axes = face_axes(landmarks)
    size = (rng.uniform(0.65, 0.8), rng.uniform(1.3, 1.6))
    tilt = rng.uniform(-20, 20)
    top = axes.mouth[1] + (axes.chin - axes.mouth[1]) * rng.uniform(0.1, 0.5)
    centre = np.array([axes.mouth[0] + rng.uniform(-0.35, 0.35), top + size[1] / 2])
    body = in_image(axes, rounded_rectangle_xy(centre, size, 0.1, tilt))
    out = image.copy()
    region = pixel_box(body, image.shape, layer_margin(axes))
    if region is None:
        return out
    alpha = coverage(region, [body])
    x, y = axes.to_face(pixel_grid(region))
    along = -(x - centre[0]) * math.sin(math.radians(tilt)) + (y - centre[1]) * math.cos(math.radians(tilt))
    if rng.random() < 0.5:
        # The screen: dark glass with a diagonal reflection, inside a thin bezel.
        colour = np.full(alpha.shape + (3,), (20, 20, 22), np.float32)
        glass = rounded_rectangle_xy(centre, (size[0] - 0.08, size[1] - 0.1), 0.07, tilt)
        screen = coverage(region, [in_image(axes, glass)])
        reflection = smoothstep(-0.1, 0.3, x - centre[0] + 0.6 * along)
        glow = np.array(rng.uniform(30, 110, 3), np.float32)
        colour += (screen * (0.3 + 0.7 * reflection))[..., None] * glow
    else:
        # The back: the case's colour and a camera block with two lenses in a top corner.
        case = jittered(rng, PHONE_COLOURS[rng.integers(len(PHONE_COLOURS))], 15)
        colour = np.full(alpha.shape + (3,), case, np.float32)
        corner = centre + turn_points([(-size[0] * 0.22, -size[1] * 0.33)], tilt)[0]
        block = coverage(region, [in_image(axes, rounded_rectangle_xy(corner, (0.26, 0.32), 0.06, tilt))])
        lenses = coverage(region, [ellipse(axes, corner + turn_points([(0, dy)], tilt)[0], (0.055, 0.055))
                                   for dy in (-0.07, 0.07)])
        colour = colour * (1 - 0.25 * block[..., None])
        colour = colour * (1 - lenses[..., None]) + lenses[..., None] * np.float32(10)
    colour *= (0.85 + 0.15 * smoothstep(-0.8, 0.8, -along))[..., None]  # lit from above
    colour *= photo_exposure(image, axes)
    finish_layer(out, image, region, axes, colour.astype(np.float32), alpha, rng)
    return out


def draw_cup(image, landmarks, rng):
    """A copy of ``image`` with a cup or mug held in front of the chin, its handle to one side."""
    axes = face_axes(landmarks)
    rim_y = axes.mouth[1] + (axes.chin - axes.mouth[1]) * rng.uniform(0.05, 0.4)
    rim_half = rng.uniform(0.42, 0.55)
    height = rng.uniform(0.95, 1.25)
    base_half = rim_half * rng.uniform(0.75, 0.95)
    cx = axes.mouth[0] + rng.uniform(-0.25, 0.25)
    side = 1 if rng.random() < 0.5 else -1
    ellipse_h = 0.12 * rim_half
    body = np.concatenate([
        ellipse(axes, (cx, rim_y), (rim_half, ellipse_h))[24:],  # the rim's far half, left to right
        axes.to_image([cx + rim_half, cx + base_half, cx - base_half, cx - rim_half],
                       [rim_y, rim_y + height, rim_y + height, rim_y]),
    ])
    handle_centre = (cx + side * (rim_half + 0.1), rim_y + height * 0.42)
    handle = ellipse(axes, handle_centre, (0.2, height * 0.28))
    hole = ellipse(axes, handle_centre, (0.1, height * 0.18))
    out = image.copy()
    region = pixel_box(np.concatenate([body, handle]), image.shape, layer_margin(axes))
    if region is None:
        return out
    alpha = np.clip(coverage(region, [body]) + coverage(region, [handle]) - coverage(region, [hole]), 0, 1)
    x, y = axes.to_face(pixel_grid(region))
    across = np.clip((x - cx) / rim_half, -1.2, 1.2)
    colour = np.full(alpha.shape + (3,), jittered(rng, CUP_COLOURS[rng.integers(len(CUP_COLOURS))], 15), np.float32)
    # A cylinder lit from one side, with a glossy streak; the opening at the top is a darker ellipse.
    light = rng.uniform(-0.5, 0.5)
    shade = (1 - 0.3 * across**2) * (1 + 0.5 * np.exp(-(((across - light) / 0.12) ** 2)))
    rim = coverage(region, [ellipse(axes, (cx, rim_y), (rim_half, ellipse_h))])
    shade *= 1 - 0.25 * rim
    colour *= shade[..., None]
    if rng.random() < 0.4:  # a printed band round the middle
        band = np.abs(y - (rim_y + height * 0.5)) < height * 0.12
        colour[band] = np.array(jittered(rng, CUP_COLOURS[rng.integers(len(CUP_COLOURS))], 20)) * shade[band][:, None]
    colour *= photo_exposure(image, axes)
    finish_layer(out, image, region, axes, colour.astype(np.float32), alpha, rng)
    return out


def draw_beard(image, landmarks, rng):
    """A copy of ``image`` with a beard: dark hair along the jaw, on the chin and over the lip, the lips left bare."""
    axes = face_axes(landmarks)
    nose_y, mouth_y, chin_y = axes.nose[1], axes.mouth[1], axes.chin
    centre, ridge = axes.outline_centre, axes.ridge(mouth_y)
    half_mouth = axes.mouth_width / 2
    moustache_top = nose_y + (mouth_y - nose_y) * rng.uniform(0.15, 0.3)
    sideburn_y = nose_y * rng.uniform(0.55, 0.8)

    def jaw(side):  # face coordinates from the sideburn down to the chin
        return [(centre + side * axes.half_width(nose_y) * 0.98, sideburn_y),
                (centre + side * axes.half_width(mouth_y) * 0.97, mouth_y),
                (centre + side * axes.half_width(chin_y) * 0.7, chin_y - 0.15)]

    def cheek(side):  # the beard's upper edge, from the moustache's end out past the mouth corner
        return [(ridge + side * half_mouth * 0.7, moustache_top), (ridge + side * (half_mouth + 0.12), mouth_y - 0.1)]

    # Round the jaw from one sideburn to the other, then back along the cheeks and over the lip.
    path = (jaw(1) + [(ridge, chin_y + 0.04)] + jaw(-1)[::-1] + cheek(-1)[::-1]
            + [(ridge, moustache_top - 0.02)] + cheek(1))
    xs, ys = np.array(path).T
    outline = axes.to_image(xs, ys)
    out = image.copy()
    region = pixel_box(outline, image.shape, layer_margin(axes))
    if region is None:
        return out
    lips = coverage(region, [ellipse(axes, (ridge, mouth_y + 0.03), (half_mouth * 1.05, 0.12))])
    area = cv2.GaussianBlur(coverage(region, [outline]), (0, 0), max(1.0, 0.07 * axes.scale)) * (1 - lips)
    # Hair: fine noise in clumps; a stubble is thin, a full beard dense.
    density = rng.uniform(0.35, 0.55) if rng.random() < 0.5 else rng.uniform(0.7, 0.9)
    fine = cv2.GaussianBlur(rng.random(area.shape).astype(np.float32), (0, 0), max(0.5, 0.01 * axes.scale))
    hair = np.clip((fine - 0.5) * 4 + 0.5, 0, 1)
    alpha = area * np.clip(density * (0.5 + hair), 0, 1)
    colour = np.full(alpha.shape + (3,), jittered(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 8), np.float32)
    colour *= (0.8 + 0.4 * hair)[..., None]
    colour *= photo_exposure(image, axes)
    finish_layer(out, image, region, axes, colour, alpha.astype(np.float32), rng, shadow=0.0)
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


def _typical_area(axes, kind):
    """Image polygon of where a placement's mask, or a not-mask, mostly lies on this face."""
    if kind in PLACEMENTS:
        return mask_outline(mask_geometry_on_axes(axes, kind), "surgical")
    nose_y, mouth_y, chin_y, mouth_x = axes.nose[1], axes.mouth[1], axes.chin, axes.mouth[0]
    x_from, x_to, y_from, y_to = {
        "hand": (mouth_x - 0.6, mouth_x + 0.6, nose_y + 0.4 * (mouth_y - nose_y), mouth_y + 0.5),
        "phone": (mouth_x - 0.4, mouth_x + 0.4, mouth_y + 0.3 * (chin_y - mouth_y), chin_y + 0.7),
        "cup": (mouth_x - 0.5, mouth_x + 0.5, mouth_y + 0.2 * (chin_y - mouth_y), chin_y + 0.5),
        "beard": (axes.outline_centre - 0.9, axes.outline_centre + 0.9, mouth_y - 0.2, chin_y),
    }[kind]
    return axes.to_image([x_from, x_to, x_to, x_from], [y_from, y_from, y_to, y_to])


def fitting_kinds(image_shape, landmarks, kinds):
    """Those of ``kinds`` (placements or not-masks) that would show enough inside the photo."""
    axes = face_axes(landmarks)
    return [kind for kind in kinds if visible_share(image_shape, _typical_area(axes, kind)) >= MIN_VISIBLE_SHARE]


def choose_fitting(rng, kinds, image_shape, landmarks):
    """One of ``kinds`` that fits in the photo, drawn at random by WEIGHTS; None when none fits."""
    fitting = fitting_kinds(image_shape, landmarks, kinds)
    if not fitting:
        return None
    weights = np.array([WEIGHTS.get(kind, 1.0) for kind in fitting])
    return fitting[rng.choice(len(fitting), p=weights / weights.sum())]
