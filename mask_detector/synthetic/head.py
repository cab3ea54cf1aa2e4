"""Heads turned in 3-D: a mean face mesh fitted to five landmarks, textured from the photo, rendered turned.

A warp of the flat picture turns a face convincingly to about 30 degrees;
past that a real head hides its far cheek behind the nose and shows its
near side, which no 2-D warp gives. Here the
canonical face mesh (468 vertices, MediaPipe, in cm) is laid on the face:
its five points that YuNet also finds are carried onto the landmarks, so
every vertex gets a place in the photo, the texture it is painted with.
The mesh is then turned about a point inside the head and drawn back to
front, each triangle taking its pixels from where it lay in the photo, and
triangles that face away are not drawn: the far side is hidden as it would
be. Whatever was drawn on the face before (a mask, a hand) turns with the
skin under it. Where the face lay before it turned, the photo is filled in
from round the face.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from mask_detector import FETCH_COMMAND
from mask_detector.assets import FACE_MESH_FILE
from mask_detector.errors import UserError
from mask_detector.pose import FACE_POINTS_3D, estimate_pose, rotation_of

# The point the head turns about, on the mesh's axes (cm; the nose tip is 7.5 cm in front of the ears'
# plane at about -2.4): the middle of the head, a little behind the ears, where the neck carries it.
PIVOT = np.array([0.0, -1.0, -4.5])
# The drawn face is blended into the picture round it over this share of the face's width at its outline.
EDGE_BLEND = 0.06
# Triangles this close to edge-on (drawn at less than this share of the area they had in the photo) are not
# drawn: their few pixels would be stretched from a sliver of the photo.
LEAST_FACING = 0.05


@dataclass(frozen=True)
class FaceMesh:
    """The canonical face: vertices (n, 3) in cm on the face's axes (x to its left, y up, z ahead) and
    triangles (m, 3) of vertex indices."""

    vertices: np.ndarray
    triangles: np.ndarray


@lru_cache(maxsize=2)
def load_face_mesh(path=FACE_MESH_FILE):
    """The mesh of a Wavefront OBJ file (its `v` and `f` lines; texture coordinates are not needed)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise UserError(f"face mesh {path} is missing; run `{FETCH_COMMAND}`") from None
    vertices = [list(map(float, line.split()[1:4])) for line in lines if line.startswith("v ")]
    triangles = [[int(item.split("/")[0]) - 1 for item in line.split()[1:4]] for line in lines if line.startswith("f ")]
    if len(vertices) < 5 or not triangles:
        raise UserError(f"face mesh {path} holds no mesh")
    return FaceMesh(np.asarray(vertices, np.float64), np.asarray(triangles, np.int64))


# Mesh axes (y up, z towards the viewer) to picture axes (y down, z into the picture).
_FLIP = np.array([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class FittedFace:
    """A mesh laid on one face of one photo: ``to_picture`` maps the mesh's x and y, once turned, to
    pixels (an affine map, so a face wider or longer than the mean one is fitted too), and the pose the
    face had in the photo."""

    to_picture: np.ndarray  # (2, 3)
    source_rotation: np.ndarray  # (3, 3), mesh axes to picture axes

    def place(self, points, rotation):
        """Pixels (n, 2) and depth (n,; larger is nearer) of mesh points turned by ``rotation``."""
        turned = (rotation @ ((points - PIVOT) * _FLIP).T).T + PIVOT * _FLIP
        pixels = turned[:, :2] @ self.to_picture[:, :2].T + self.to_picture[:, 2]
        return pixels, -turned[:, 2]


def fit_face(landmarks):
    """The FittedFace that carries the mesh's five points onto ``landmarks`` (YuNet's order)."""
    pose = estimate_pose(landmarks)
    # The photo's own turn and tilt are kept in the fit; its roll is the affine map's.
    rotation = rotation_of(pose.yaw, pose.pitch) if pose else np.eye(3)
    turned = (rotation @ ((FACE_POINTS_3D - PIVOT) * _FLIP).T).T + PIVOT * _FLIP
    source = np.hstack([turned[:, :2], np.ones((5, 1))])
    to_picture, *_ = np.linalg.lstsq(source, np.asarray(landmarks, np.float64).reshape(5, 2), rcond=None)
    return FittedFace(to_picture.T, rotation)


def turn_face(image, landmarks, yaw, pitch=0.0, plain=None, mesh=None):
    """A copy of ``image`` with the face turned to ``yaw`` degrees (to the picture's right) and ``pitch``
    (down), and its five landmarks there; the face should look about at the camera, upright.

    Angles are the face's pose afterwards, not a change: a face already a
    little turned in the photo is drawn at the pose asked for. The face
    stays where it was in the picture (its outline's centre does not move),
    as a camera that follows a person keeps them in view. ``plain`` is the
    photo before anything was drawn on the face: round the turned face the
    picture is made from it, so that what was drawn past the face's outline
    (a mask's edge and ear loops) does not stay behind where the face was.
    """
    mesh = mesh or load_face_mesh()
    height, width = image.shape[:2]
    fitted = fit_face(landmarks)
    source_pixels, _ = fitted.place(mesh.vertices, fitted.source_rotation)
    # A face cropped tight reaches past the photo's edge: the photo is widened first by repeating its edge,
    # so that the side of the face that turning shows is drawn from the nearest skin, not from nothing.
    beyond = max(0.0, -source_pixels.min(), source_pixels[:, 0].max() - width, source_pixels[:, 1].max() - height)
    margin = int(np.ceil(beyond)) + 2 if beyond > 0 else 0
    if margin:
        image, plain = (None if picture is None else cv2.copyMakeBorder(picture, *[margin] * 4, cv2.BORDER_REPLICATE)
                        for picture in (image, plain))
        source_pixels = source_pixels + margin
    target = rotation_of(yaw, pitch)
    target_pixels, depth = fitted.place(mesh.vertices, target)
    shift = _middle(source_pixels) - _middle(target_pixels)  # the margin is in it: source pixels moved by it
    target_pixels = target_pixels + shift
    background = _without_face(image if plain is None else plain, mesh.triangles, source_pixels)
    drawn, coverage = _render(image, mesh.triangles, source_pixels, target_pixels, depth, image.shape)
    weight = _soft_edge(coverage, target_pixels)
    out = background.astype(np.float32) * (1 - weight[..., None]) + drawn.astype(np.float32) * weight[..., None]
    points = fitted.place(FACE_POINTS_3D, target)[0] + shift
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out[margin:margin + height, margin:margin + width], points - margin


def _middle(pixels):
    return (pixels.min(axis=0) + pixels.max(axis=0)) / 2


# The face is taken out of the photo before the turned one is drawn, so that where it no longer lies (the
# far cheek's place, once turned) shows what was round it: hair, skin, background, filled in from the
# outline inwards. It is filled at most this many pixels wide, which is fast and as good at these sizes.
FILL_SIDE = 96


def _without_face(image, triangles, pixels):
    """The photo with the face's area filled in from its surroundings (cv2.inpaint, Telea's method)."""
    height, width = image.shape[:2]
    scale = min(1.0, FILL_SIDE / max(height, width))
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else image
    area = np.zeros(small.shape[:2], np.uint8)
    for corners in pixels[triangles] * scale:
        cv2.fillConvexPoly(area, np.round(corners * 16).astype(np.int32), 255, cv2.LINE_8, shift=4)
    area = cv2.dilate(area, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, area, 3, cv2.INPAINT_TELEA)
    if scale < 1:
        filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
        # Outside the face the photo keeps its own sharp pixels.
        outside = cv2.resize(area, (width, height), interpolation=cv2.INTER_LINEAR) == 0
        filled[outside] = image[outside]
    return filled


def _render(image, triangles, source_pixels, target_pixels, depth, shape):
    """The mesh drawn at ``target_pixels`` with the texture at ``source_pixels``; and where it was drawn."""
    height, width = shape[:2]
    corners, source_corners = target_pixels[triangles], source_pixels[triangles]  # (m, 3, 2)
    area, source_area = _signed_areas(corners), _signed_areas(source_corners)
    # Facing the camera: the winding most triangles have in the photo, of a face that looks about at the
    # camera. A triangle whose area shrinks to a sliver of what it had there is nearly edge-on.
    front_sign = np.sign(np.median(np.sign(source_area)))
    facing = (np.sign(area) == front_sign) & (np.abs(area) > LEAST_FACING * np.maximum(np.abs(source_area), 1e-6))
    order = [i for i in np.argsort(depth[triangles].mean(axis=1)) if facing[i]]  # far ones first
    index = np.full((height, width), -1, np.int32)
    for i in order:
        cv2.fillConvexPoly(index, np.round(corners[i] * 16).astype(np.int32), int(i), cv2.LINE_8, shift=4)
    ys, xs = np.nonzero(index >= 0)
    map_x = np.full((height, width), -1.0, np.float32)
    map_y = np.full((height, width), -1.0, np.float32)
    if len(xs):
        # Each triangle's affine map from where it is drawn to where its texture lies in the photo.
        target_h = np.concatenate([corners.transpose(0, 2, 1), np.ones((len(triangles), 1, 3))], axis=1)
        ok = np.abs(np.linalg.det(target_h)) > 1e-9
        maps = np.zeros((len(triangles), 2, 3))
        maps[ok] = source_corners[ok].transpose(0, 2, 1) @ np.linalg.inv(target_h[ok])
        chosen = maps[index[ys, xs]]
        map_x[ys, xs] = chosen[:, 0, 0] * xs + chosen[:, 0, 1] * ys + chosen[:, 0, 2]
        map_y[ys, xs] = chosen[:, 1, 0] * xs + chosen[:, 1, 1] * ys + chosen[:, 1, 2]
    drawn = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return drawn, (index >= 0).astype(np.float32)


def _signed_areas(corners):
    """Twice each triangle's area, signed by its winding; ``corners`` (m, 3, 2)."""
    edge_a, edge_b = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    return edge_a[:, 0] * edge_b[:, 1] - edge_a[:, 1] * edge_b[:, 0]


def _soft_edge(coverage, target_pixels):
    """The drawn face's weight over the picture: 1 inside, falling to 0 across a thin band at its outline."""
    width = float(np.ptp(target_pixels[:, 0]))
    blur = max(1, int(round(EDGE_BLEND * width)))
    # Eroded first, so that the blend lies inside the face's outline and never shows the picture's own
    # pixels where no triangle was drawn.
    kernel = np.ones((2 * (blur // 2) + 1,) * 2, np.uint8)
    inner = cv2.erode(coverage, kernel)
    return cv2.GaussianBlur(inner, (2 * blur + 1, 2 * blur + 1), 0) * coverage
