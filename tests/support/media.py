"""Make and check the media the scripts read and write: clips from photos, damaged files, found faces."""

import cv2
import numpy as np

FRAMES_PER_PHOTO = 4


def make_clip(photos, path, size=(640, 480), fps=10, frames_per_photo=FRAMES_PER_PHOTO):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for photo in photos:
        frame = cv2.resize(cv2.imread(str(photo)), size)
        for _ in range(frames_per_photo):
            writer.write(frame)
    writer.release()
    return path


def count_video_frames(path):
    """How many frames a video file really holds, by decoding them all."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.isOpened() and capture.read()[0]:
        count += 1
    capture.release()
    return count


def mutate(data, rng):
    """Damage image bytes the way disks and networks do: bit flips, truncation, inserted or overwritten junk."""
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 20)):
            data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        del data[rng.integers(1, len(data)):]
    elif kind == 2:
        at = rng.integers(len(data))
        data[at:at] = rng.bytes(int(rng.integers(1, 500)))
    else:
        at = rng.integers(len(data))
        junk = rng.bytes(int(rng.integers(1, 200)))
        data[at:at + len(junk)] = junk
    return bytes(data)


def match_to_truth(boxes, truth_boxes, least_iou=0.3):
    """For each true box, the index of the detected box that overlaps it most (IoU >= least_iou), or -1.

    A loose IoU, because detectors and annotators frame a face differently
    (forehead, chin, ears); this asks whether a face was found, not how tightly.
    """
    from mask_detector.boxes import iou_matrix

    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.full(len(truth_boxes), -1)
    overlaps = iou_matrix(boxes, truth_boxes)
    best = overlaps.argmax(axis=0)
    return np.where(overlaps.max(axis=0) >= least_iou, best, -1)
