"""How alike must two looks of a face be to be taken for one person? Fitted on the training data's validation split.

    python benchmarks/fit_looks.py                      # dataset/chandrikadeb7, 400 faces
    python benchmarks/fit_looks.py --dataset DIR --faces 200

The tracker knows a face again across a cut in the footage by its look
(tracking.looks_of: the face's box, grey, 16x16, at mean 0 and spread 1) and
takes two looks for one face when their likeness (correlation) reaches
tracking.LEAST_LIKENESS. This script sets that value where the live script
meets faces: each validation face is shrunk to 24-96 px, as in street video,
and seen twice as a camera sees one face in two frames a moment apart (its
box framed 10 % differently, a different size, motion blur, light dimmed to
a third, JPEG). Two sightings of one face are a pair that must be joined;
sightings of two different faces, a pair that must not. The value printed
is the lowest that joins at most ``--wrong-joins`` of the different pairs
(a wrong join merges two people, worse than a missed one, which only counts
a person twice), with the share of same-face pairs it joins.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from make_clips import motion_blur  # noqa: E402
from mask_detector.cli import at_least  # noqa: E402
from mask_detector.data import find_images, locate_faces, split_without_leaks  # noqa: E402
from mask_detector.errors import UserError, run_cli  # noqa: E402
from mask_detector.files import read_image  # noqa: E402
from mask_detector.tracking import LEAST_LIKENESS, likeness, looks_of  # noqa: E402


def sighting(image, box, rng):
    """The look of the face at ``box`` (top, left, height, width) as one frame of street video shows it."""
    top, left, height, width = box
    scale = rng.uniform(24, 96) / max(height, width)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if rng.random() < 0.3:  # motion blur, as the tracking clips make it
        small = motion_blur(small, int(rng.integers(3, 8)), float(rng.uniform(0, 180)))
    small = cv2.convertScaleAbs(small, alpha=float(rng.uniform(0.33, 1.0)))
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
    small = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    # The detector frames one face a little differently from frame to frame.
    x1, y1, side_x, side_y = left * scale, top * scale, width * scale, height * scale
    x1, y1 = x1 + rng.normal(0, 0.05) * side_x, y1 + rng.normal(0, 0.05) * side_y
    grow = rng.normal(1.0, 0.05)
    return looks_of(small, [[x1, y1, x1 + side_x * grow, y1 + side_y * grow]])[0]


def faces_of(dataset, most, seed):
    """(image, face box) of up to ``most`` validation images with one face found, in a seeded order."""
    images = find_images([dataset], report=lambda _: None)
    _, validation, _, _ = split_without_leaks(images)
    order = np.random.default_rng(seed).permutation(len(validation.paths))
    chosen = validation.subset(order[:most * 2])
    locate_faces(chosen, report=lambda _: None)
    faces = [(read_image(path), box) for path, box in zip(chosen.paths, chosen.face_boxes) if box is not None]
    if len(faces) < 2:
        raise UserError(f"{dataset}: fewer than two faces found in its validation split")
    return faces[:most]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=ROOT / "dataset" / "chandrikadeb7")
    parser.add_argument("--faces", type=at_least(2), default=400)
    parser.add_argument("--wrong-joins", type=at_least(0.0, float, 1.0), default=0.01,
                        help="the share of different pairs the fitted value may join")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    faces = faces_of(args.dataset, args.faces, args.seed)
    first = [sighting(image, box, rng) for image, box in faces]
    second = [sighting(image, box, rng) for image, box in faces]
    same = np.array([likeness(a, b) for a, b in zip(first, second)])
    # Each face against the second sightings of the next three faces: three different pairs each.
    different = np.array([likeness(first[i], second[(i + step) % len(faces)])
                          for i in range(len(faces)) for step in (1, 2, 3)])
    # Just above the likeness of the (k+1)-th likest different pair: at most k of them, the share asked, are joined.
    ordered = np.sort(different)[::-1]
    fitted = float(np.nextafter(ordered[int(args.wrong_joins * len(ordered))], 1.0))
    print(f"faces: {len(faces)} of the validation split of {args.dataset.name}")
    print("| likeness at least | same face joined | different faces joined |")
    print("|---|---|---|")
    for value, name in ((fitted, "fitted"), (LEAST_LIKENESS, "tracking.LEAST_LIKENESS")):
        print(f"| {value:.3f} ({name}) | {np.mean(same >= value):.3f} | {np.mean(different >= value):.3f} |")


if __name__ == "__main__":
    run_cli(main)
