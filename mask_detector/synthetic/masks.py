"""Masks: their styles (shape, fabric, colour, print) and drawing one on a face, with its ear loops.

A mask is drawn in one of three shapes (surgical, cloth, KN95), many
colours and prints, shaded by its folds and seams, where the face geometry
puts it for the placement asked, worn correctly or wrongly.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mask_detector.synthetic.geometry import FACE_HALF_WIDTH, ear_loop_paths, mask_geometry, mask_outline
from mask_detector.synthetic.rendering import (
    coverage, finish_layer, jittered, layer_margin, photo_exposure, pixel_box, pixel_grid, smoothstep,
)

SHAPES = ("surgical", "cloth", "kn95")
PATTERNS = ("plain", "stripes", "dots", "print")

# BGR colours of the fabrics, by name.
COLOURS = {
    "light blue": (226, 198, 150), "white": (242, 242, 240), "black": (40, 38, 38), "grey": (150, 150, 146),
    "pastel pink": (205, 190, 245), "pastel green": (190, 228, 185), "pastel yellow": (175, 232, 248),
    "lavender": (230, 195, 205),
    "navy": (90, 45, 30), "dark red": (40, 30, 125), "dark green": (50, 82, 38), "charcoal": (72, 68, 66),
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


def random_style(rng, dark=False):
    """A MaskStyle drawn at random, weighted towards what people wear; ``dark`` picks a dark fabric."""
    shape = SHAPES[rng.choice(len(SHAPES), p=SHAPE_CHANCES)]
    colours = DARK_COLOURS if dark else SHAPE_COLOURS[shape]
    colour_name = colours[rng.integers(len(colours))]
    pattern = PATTERNS[rng.choice(len(PATTERNS), p=PATTERN_CHANCES[shape])]
    others = [name for name in COLOURS if name != colour_name]
    pattern_colours = tuple(jittered(rng, COLOURS[others[i]]) for i in rng.choice(len(others), 2, replace=False))
    # Surgical and KN95 masks have white elastic; cloth masks often have loops of their own fabric.
    cloth_loops = shape == "cloth" and rng.random() < 0.5
    colour = jittered(rng, COLOURS[colour_name])
    return MaskStyle(
        shape=shape,
        colour=colour,
        pattern=pattern,
        pattern_colours=pattern_colours,
        pattern_size=float(rng.uniform(0.12, 0.35)),
        pattern_angle=float(rng.choice([0.0, 90.0, 45.0, -45.0])),
        print_seed=int(rng.integers(2**31)),
        loop_colour=colour if cloth_loops else jittered(rng, (235, 235, 235)),
        ear_loops=shape != "cloth" or rng.random() < 0.8,
    )


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
    shade *= 1 - 0.3 * smoothstep(0.78, 1.05, t)  # and under the chin
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
    axes = geometry.axes
    outline = mask_outline(geometry, style.shape)
    out = image.copy()
    region = pixel_box(outline, image.shape, layer_margin(axes))
    if region is None:
        return out
    s, t = geometry.to_mask(pixel_grid(region))
    alpha = coverage(region, [outline])
    edge = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3) / axes.scale
    colour = _fabric(style, s * FACE_HALF_WIDTH, t * geometry.height)
    colour *= _relief(style, s, t, geometry.height, edge, rng.uniform(-0.2, 0.2))[..., None]
    weave = 0.06 if style.shape == "cloth" else 0.025
    colour *= (1 + cv2.GaussianBlur(rng.normal(0, weave, s.shape).astype(np.float32), (0, 0), 0.6))[..., None]
    exposure = photo_exposure(image, axes)
    colour *= exposure
    finish_layer(out, image, region, axes, colour.astype(np.float32), alpha, rng)
    if style.ear_loops:
        _draw_ear_loops(out, image, geometry, style, exposure, rng)
    return out


def _draw_ear_loops(out, source, geometry, style, exposure, rng):
    """Draw the elastic loops into ``out``: lit, blurred and blended like the mask."""
    axes = geometry.axes
    paths = ear_loop_paths(geometry, style.shape)
    region = pixel_box(np.concatenate(paths), out.shape, layer_margin(axes))
    if region is None:
        return
    alpha = np.zeros((region[3] - region[1], region[2] - region[0]), np.float32)
    thickness = max(1, int(round(0.035 * axes.scale)))
    for path in paths:
        fixed = np.round((path - region[:2]) * 16).astype(np.int32)
        cv2.polylines(alpha, [fixed], False, 1.0, thickness, cv2.LINE_AA, shift=4)
    colour = np.full(alpha.shape + (3,), np.array(style.loop_colour) * 0.9 * exposure, np.float32)
    finish_layer(out, source, region, axes, colour, alpha, rng, shadow=0.15)

