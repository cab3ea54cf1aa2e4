"""Box utilities, in one place: boxes are (x1, y1, x2, y2) pixel rows of an (n, 4) array."""

import numpy as np


def as_boxes(boxes):
    """An (n, 4) float32 array of whatever list or array of boxes is given (empty gives (0, 4))."""
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def areas(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def intersections(a, b):
    """(len(a), len(b)) areas where each box of ``a`` meets each box of ``b``."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def iou_matrix(a, b):
    """Intersection over union of each box of ``a`` with each box of ``b``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    inter = intersections(a, b)
    return inter / np.maximum(areas(a)[:, None] + areas(b)[None, :] - inter, 1e-9)


def share_inside(a, b):
    """Intersection over the smaller of the two boxes: 1.0 when one box lies wholly inside the other.

    IoU misses a box nested in a much larger one (a quarter of the area inside
    gives IoU 0.25 however deep it lies); this does not.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    smaller = np.minimum(areas(a)[:, None], areas(b)[None, :])
    return intersections(a, b) / np.maximum(smaller, 1e-9)


def drop_nested(boxes, most_inside=0.6):
    """Indices of the boxes to keep when a box lying mostly inside a larger one is the same face again.

    Of two boxes whose smaller one has more than ``most_inside`` of its area
    inside the other, the larger is kept: it frames the whole face, while the
    nested one holds part of it (the eyes and the top of a mask).
    """
    boxes = as_boxes(boxes)
    order = np.argsort(-areas(boxes), kind="stable")  # largest first
    inside = share_inside(boxes, boxes)
    kept = []
    for index in order:
        if all(inside[index, other] <= most_inside for other in kept):
            kept.append(int(index))
    return sorted(kept)


def near(a, b, reach=0.5):
    """Pairs whose centres are within ``reach`` face widths and whose sizes differ by less than half."""
    centre_a = (a[:, None, :2] + a[:, None, 2:]) / 2
    centre_b = (b[None, :, :2] + b[None, :, 2:]) / 2
    width_a = (a[:, 2] - a[:, 0])[:, None]
    width_b = (b[:, 2] - b[:, 0])[None, :]
    distance = np.linalg.norm(centre_a - centre_b, axis=2)
    ratio = np.maximum(width_a, width_b) / np.maximum(np.minimum(width_a, width_b), 1e-6)
    return (distance < reach * np.maximum(width_a, width_b)) & (ratio < 1.5)


def greedy_pairs(affinity, least):
    """(row, column) pairs, highest affinity first, each row and column used once, affinity >= least."""
    pairs = []
    affinity = np.array(affinity, dtype=np.float64)
    while affinity.size:
        row, column = np.unravel_index(np.argmax(affinity), affinity.shape)
        if affinity[row, column] < least:
            break
        pairs.append((int(row), int(column)))
        affinity[row, :] = -1
        affinity[:, column] = -1
    return pairs


def overlap(a, b):
    """Whether two boxes share any area (touching edges do not)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def clipped(box, width, height):
    """A box rounded to whole pixels and clipped to a ``width`` x ``height`` image, as a tuple of ints."""
    x1, y1, x2, y2 = box
    x1, y1 = max(0, int(round(x1))), max(0, int(round(y1)))
    x2, y2 = min(width, int(round(x2))), min(height, int(round(y2)))
    return x1, y1, x2, y2


def grown(box, share, width, height):
    """A box widened by ``share`` of its width and height on every side, cut at the image's edges (ints)."""
    x1, y1, x2, y2 = box
    margin_x, margin_y = share * (x2 - x1), share * (y2 - y1)
    left, top = max(0, int(x1 - margin_x)), max(0, int(y1 - margin_y))
    return left, top, min(width, int(x2 + margin_x)), min(height, int(y2 + margin_y))


def longer_side(box):
    """A box's longer side in pixels: the face size that decides whether a face can be judged."""
    x1, y1, x2, y2 = box
    return max(x2 - x1, y2 - y1)
