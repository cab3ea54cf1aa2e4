"""Rendering: drawn shapes made to look as if the photo had shown them.

Masks, hands, phones, cups and beards are drawn as polygons in face
coordinates, filled anti-aliased over a pixel box, then finished: lit by
the photo's own light, blurred as much as the photo, turned grey on a
black-and-white photo, and blended in over a soft shadow.
"""

import math

import cv2
import numpy as np


def pixel_box(points, shape, margin):
    """The pixel box (x0, y0, x1, y1) around ``points`` plus ``margin``, inside an image of ``shape``; None if empty."""
    low = np.floor(points.min(axis=0) - margin).astype(int)
    high = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    x0, y0 = max(0, low[0]), max(0, low[1])
    x1, y1 = min(shape[1], high[0]), min(shape[0], high[1])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def pixel_grid(region):
    """Image coordinates (h, w, 2) of every pixel of ``region``."""
    x0, y0, x1, y1 = region
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return np.stack([xs, ys], axis=-1).astype(np.float64)


def coverage(region, polygons):
    """The coverage (h, w) of ``region`` by image-pixel polygons: anti-aliased, at sub-pixel precision."""
    x0, y0, x1, y1 = region
    canvas = np.zeros((y1 - y0, x1 - x0), np.float32)
    for polygon in polygons:  # one at a time: a single fillPoly leaves overlaps of polygons empty
        fixed = np.round((np.asarray(polygon) - (x0, y0)) * 16).astype(np.int32)
        cv2.fillPoly(canvas, [fixed], 1.0, cv2.LINE_AA, shift=4)
    return canvas


def smoothstep(low, high, value):
    x = np.clip((value - low) / (high - low), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def turn_points(points, degrees):
    """Points (n, 2) turned by ``degrees`` about the origin (clockwise on screen, where y points down)."""
    turn = math.radians(degrees)
    return np.asarray(points, np.float64) @ np.array([[math.cos(turn), math.sin(turn)],
                                                      [-math.sin(turn), math.cos(turn)]])


def ellipse_xy(centre, half_axes, degrees=0.0, count=48):
    """Points (count, 2) of an ellipse: centre, half axes, turned by ``degrees``."""
    a = np.linspace(0, 2 * np.pi, count, endpoint=False)
    untilted = np.stack([half_axes[0] * np.cos(a), half_axes[1] * np.sin(a)], axis=1)
    return np.asarray(centre) + turn_points(untilted, degrees)


def rounded_rectangle_xy(centre, size, radius, degrees=0.0, count=8):
    """Points of a rectangle with rounded corners: centre, (width, height), corner radius, turn."""
    half_w, half_h = size[0] / 2 - radius, size[1] / 2 - radius
    points = []
    for (cx, cy), start in (((half_w, half_h), 0), ((-half_w, half_h), 90), ((-half_w, -half_h), 180),
                            ((half_w, -half_h), 270)):
        a = np.radians(np.linspace(start, start + 90, count))
        points += list(zip(cx + radius * np.cos(a), cy + radius * np.sin(a)))
    return np.asarray(centre) + turn_points(points, degrees)


def in_image(axes, points):
    """Image pixels of points (n, 2) in face coordinates."""
    return axes.to_image(points[:, 0], points[:, 1])


def ellipse(axes, centre, half_axes, degrees=0.0):
    """Image points of an ellipse given in face coordinates."""
    return in_image(axes, ellipse_xy(centre, half_axes, degrees))


def jittered(rng, colour, spread=12):
    """``colour`` with each channel moved at random by up to ``spread``: no two things are dyed alike."""
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in colour)


# The photo's look, which a drawn layer takes on.


def photo_exposure(image, axes):
    """How bright the photo is, from the brightest tenth of the face (eye whites, highlights).

    Skin tone hardly moves it, so a white mask on a dark face stays white,
    while the same mask in a dim photo gets dim.
    """
    region = _face_region(image, axes)
    if region is None:
        return 1.0
    x0, y0, x1, y1 = region
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    return float(np.clip((np.percentile(grey, 90) / 200.0) ** 0.6, 0.5, 1.15))


def _face_region(image, axes):
    """The pixel box of the face from the brows to the chin, or None when it is outside the image."""
    corners = axes.to_image([-0.9, 0.9, -0.9, 0.9], [-0.4, -0.4, axes.chin, axes.chin])
    return pixel_box(corners, image.shape, 0)


def _photo_blur(image, axes):
    """How blurred the photo is, as the sigma in pixels of a Gaussian that would blur a crisp drawing as much.

    Blurring an edge of blur s by 1 more pixel lowers its gradient by the
    factor s / sqrt(s^2 + 1); the strongest gradients of the face, before and
    after, give that factor and so s. A crisp anti-aliased drawing itself
    measures about 0.7, which is taken off.
    """
    region = _face_region(image, axes)
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


def _greyscale(image, axes):
    """Whether the photo is black and white (its face's channels all but equal)."""
    region = _face_region(image, axes)
    if region is None:
        return False
    x0, y0, x1, y1 = region
    pixels = image[y0:y1, x0:x1]
    spread = cv2.max(cv2.absdiff(pixels[..., 0], pixels[..., 1]), cv2.absdiff(pixels[..., 1], pixels[..., 2]))
    return float((spread > 6).mean()) <= 0.05  # JPEG colour noise leaves a few pixels apart


def _scene_light(image, region, axes, alpha, strength=0.6):
    """Per-pixel light of the photo under the drawing: its blurred luminance, relative to its median.

    Blurred over about a third of an eye distance, it keeps the light falling
    across the face (one cheek in shadow) but not the mouth or nostrils.
    """
    x0, y0, x1, y1 = region
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), max(1.0, 0.35 * axes.scale))
    inside = alpha > 0.5
    reference = float(np.median(grey[inside])) if inside.any() else float(grey.mean())
    # Bounded: where the drawing leaves the face, the luminance is the background's, not light.
    return np.clip(grey / max(reference, 1.0), 0.6, 1.35) ** strength


def finish_layer(out, source, region, axes, colour, alpha, rng, shadow=0.3):
    """Light, soften and blend a drawn layer (colour, alpha) into ``out`` over ``region``.

    The layer takes the photo's light, is blurred as much as the photo (a
    crisp drawing on a soft photo would give it away), and casts a soft
    shadow down the face so that it stands in front of it.
    """
    x0, y0, x1, y1 = region
    colour = colour * _scene_light(source, region, axes, alpha)[..., None]
    if _greyscale(source, axes):  # a colour mask on a black-and-white photo would give it away
        colour = np.repeat(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)
    blur = _photo_blur(source, axes) * rng.uniform(0.8, 1.2)
    colour = cv2.GaussianBlur(colour, (0, 0), blur)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, blur))
    below = out[y0:y1, x0:x1].astype(np.float32)
    if shadow:
        step = 0.05 * axes.scale * axes.y_axis
        moved = cv2.warpAffine(alpha, np.float32([[1, 0, step[0]], [0, 1, step[1]]]), alpha.shape[::-1])
        cast = cv2.GaussianBlur(moved, (0, 0), max(1.0, 0.06 * axes.scale))
        below *= (1 - shadow * cast * (1 - alpha))[..., None]
    blended = below * (1 - alpha[..., None]) + colour * alpha[..., None]
    out[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def layer_margin(axes):
    # Room for the blurred edge and the shadow beside the drawn shape.
    return 0.2 * axes.scale + 3

