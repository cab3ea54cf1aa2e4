"""Test footage with known faces in every frame, made from annotated photos, for scoring trackers.

    python benchmarks/make_clips.py --voc evaluation/facemask_voc_dev --output clips --photos 12 --clips 3

Each clip is a 640x480 .mp4 (mp4v, 25 fps) in which a view pans and zooms
across a sequence of PASCAL VOC photos, a few seconds per photo, so faces
enter and leave the frame. On top comes what real footage does to a tracker,
all drawn from ``--seed`` so a clip can be made again exactly: hand-held
shake, a few dropped frames, motion blur, someone walking past close to the
camera and hiding faces for a moment, and light that dims and comes back.

Beside each clip, ``<clip>.truth.json``:

    {"fps": 25, "frame_size": [640, 480],
     "people": [{"id", "photo", "label": "mask" | "no_mask" | "incorrect"}],
     "frames": [{"frame": index in the clip, "source_frame": index before drops,
                 "time": seconds before drops,
                 "faces": [{"person", "box": [x1, y1, x2, y2], "visible"}]}]}

A face is listed in a frame when at least half of its box is inside the
frame; its box is clipped to the frame; ``visible`` is false while the
walker covers at least half of it. Every annotated face of a photo is one
person, seen only during that photo's stretch of the clip.
"""

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mask_detector.cli import at_least  # noqa: E402
from mask_detector.errors import UserError, run_cli  # noqa: E402
from mask_detector.evaluation import load_voc  # noqa: E402

FPS = 25
WIDTH, HEIGHT = 640, 480
# The median face of a photo is zoomed to about this many pixels: big enough for any detector,
# small enough that a crowd still fits the view. Photos whose faces cannot land in 24-120 px are skipped.
TARGET_FACE = 56
FACE_RANGE = (24, 120)
# Past 5x a 400 px photo is mush; below 1.25x the frame's own fill there is no room to pan.
MAX_ZOOM = 5.0
PAN_ROOM = 1.25
WALKER_COLOUR = (38, 34, 30)  # dark clothes


def zoom_range(annotation, shape):
    """The zoom at the start and end of a photo's stretch, or None when its faces cannot come out 24-120 px."""
    height, width = shape[:2]
    fill = max(WIDTH / width, HEIGHT / height)
    median = float(np.median(annotation.sizes))
    zoom = float(np.clip(TARGET_FACE / max(median, 1.0), fill * PAN_ROOM, MAX_ZOOM))
    if not FACE_RANGE[0] <= median * zoom <= FACE_RANGE[1]:
        return None
    # A slow zoom of +-10 % around it; never so far out that the view leaves the photo.
    return max(zoom * 0.9, fill * 1.05), zoom * 1.1


def choose_photos(voc, count, rng):
    """``count`` photos with faces that can be zoomed to a useful size, in a seeded random order."""
    annotations, chosen = load_voc(voc), []
    for index in rng.permutation(len(annotations)):
        annotation = annotations[index]
        if len(annotation.boxes) == 0:
            continue
        image = cv2.imread(str(annotation.image))
        zooms = None if image is None else zoom_range(annotation, image.shape)
        if zooms:
            chosen.append((annotation, image, zooms))
            if len(chosen) == count:
                break
    return chosen


def camera_path(shape, zooms, frames, rng):
    """Per frame (zoom, x0, y0): the view's scale and its top-left corner in photo pixels.

    The view sweeps from one side of the photo to the other, so the faces
    near the sides cross the frame's edges; it stays inside the photo so no
    border shows.
    """
    height, width = shape[:2]
    start_x = float(rng.integers(2))
    along = np.linspace(0.0, 1.0, frames)
    x_share = start_x + (1 - 2 * start_x) * along
    y_share = np.interp(along, [0, 1], rng.uniform(0, 1, 2))
    if rng.integers(2):
        zooms = zooms[::-1]
    zoom = np.interp(along, [0, 1], zooms)
    x0 = x_share * (width - WIDTH / zoom)
    y0 = y_share * (height - HEIGHT / zoom)
    return zoom, x0, y0


def hand_shake(frames, rng, step=2.0, memory=0.8):
    """Per frame (dx, dy) in frame pixels: a hand drifts and corrects, so each offset leans on the last."""
    offsets = np.zeros((frames, 2))
    for index in range(1, frames):
        offsets[index] = memory * offsets[index - 1] + rng.normal(0, step, 2)
    return offsets


def dropped_frames(frames, rng, events):
    """Source frames never written: ``events`` runs of 1-3 frames, as a stalled camera or network loses them."""
    dropped, starts = set(), np.arange(FPS, max(FPS, frames - 3))  # none in the first second
    for start in rng.choice(starts, size=min(events, len(starts)), replace=False):
        dropped.update(range(int(start), int(start) + int(rng.integers(1, 4))))
    return dropped


def blurred_frames(frames, rng, bursts):
    """Source frame -> (length, angle) of motion blur: short bursts, as when the camera is swung."""
    blurred = {}
    for start in rng.integers(0, frames - 4, size=bursts):
        length, angle = int(rng.integers(9, 22)), float(rng.uniform(0, 180))
        for index in range(int(start), int(start) + int(rng.integers(2, 5))):
            blurred[index] = (length, angle)
    return blurred


def motion_blur(frame, length, angle):
    """Smear the frame along a line, the streak a moving camera leaves during one exposure."""
    kernel = np.zeros((length, length), np.float32)
    centre, reach = (length - 1) / 2, (length - 1) / 2
    dx, dy = reach * math.cos(math.radians(angle)), reach * math.sin(math.radians(angle))
    cv2.line(kernel, (round(centre - dx), round(centre - dy)), (round(centre + dx), round(centre + dy)), 1.0)
    return cv2.filter2D(frame, -1, kernel / kernel.sum())


def walkers(segments, rng, every):
    """(first source frame, frames, direction, width) of each person walking past, one every ``every`` photos.

    They start in the middle of a photo's stretch, when its faces are in view.
    """
    passes = []
    for first, frames in segments[::every]:
        duration = int(rng.integers(FPS, FPS * 3 // 2))
        start = first + int(rng.integers(frames // 4, max(frames // 4 + 1, frames - duration)))
        passes.append((start, duration, int(rng.choice([-1, 1])), int(rng.integers(170, 260))))
    return passes


def walker_mask(progress, direction, width):
    """How much of each pixel the walker covers (0-1) at ``progress`` (0-1) of the pass.

    A person close to the camera: a body taller than the frame and a head
    at the top, so whatever lies in the path is hidden for a moment.
    """
    travel = progress if direction > 0 else 1 - progress
    centre = int(-width + travel * (WIDTH + 2 * width))
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.ellipse(mask, (centre, HEIGHT + 40), (width // 2, HEIGHT - 30), 0, 0, 360, 255, -1)
    cv2.circle(mask, (centre, 40), int(width * 0.32), 255, -1)
    return cv2.GaussianBlur(mask, (21, 21), 0).astype(np.float32) / 255  # soft, out-of-focus edge


def light(frames, rng, darkest=0.3):
    """Per frame brightness factor: one dip to ``darkest`` and back over about a third of the clip."""
    factor = np.ones(frames)
    length = frames // 3
    start = int(rng.integers(0, frames - length))
    dip = 0.5 - 0.5 * np.cos(np.linspace(0, 2 * np.pi, length))  # slow fade out, slow return
    factor[start:start + length] -= (1 - darkest) * dip
    return factor


def faces_in_frame(boxes, people, matrix, cover):
    """The truth for one frame: faces at least half inside, clipped to the frame, hidden where covered."""
    faces = []
    for box, person in zip(boxes, people):
        x1, y1 = matrix @ [box[0], box[1], 1]
        x2, y2 = matrix @ [box[2], box[3], 1]
        inside = [max(x1, 0), max(y1, 0), min(x2, WIDTH), min(y2, HEIGHT)]
        area = (x2 - x1) * (y2 - y1)
        seen = max(inside[2] - inside[0], 0) * max(inside[3] - inside[1], 0)
        if area <= 0 or seen < area / 2:
            continue
        box = [int(round(v)) for v in inside]
        covered = cover[box[1]:box[3], box[0]:box[2]] if cover is not None else np.zeros(0)
        hidden = covered.size > 0 and covered.mean() >= 0.5
        faces.append({"person": person, "box": box, "visible": not hidden})
    return faces


def make_clip(photos, path, seconds_per_photo, rng, walker_every=2, drop_events=3):
    """Write one clip of ``photos`` (from choose_photos) to ``path``; return its truth."""
    per_photo = int(round(seconds_per_photo * FPS))
    total = per_photo * len(photos)
    segments = [(number * per_photo, per_photo) for number in range(len(photos))]
    shake = hand_shake(total, rng)
    dropped = dropped_frames(total, rng, drop_events)
    blurred = blurred_frames(total, rng, bursts=len(photos))
    passes = walkers(segments, rng, walker_every)
    brightness = light(total, rng)

    people, truth_frames = [], []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    for (annotation, image, zooms), (first, frames) in zip(photos, segments):
        ids = list(range(len(people), len(people) + len(annotation.boxes)))
        people += [{"id": i, "photo": annotation.image.name, "label": label}
                   for i, label in zip(ids, annotation.labels)]
        zoom, x0, y0 = camera_path(image.shape, zooms, frames, rng)
        for step in range(frames):
            source = first + step
            if source in dropped:
                continue
            dx, dy = shake[source]
            matrix = np.array([[zoom[step], 0, dx - zoom[step] * x0[step]],
                               [0, zoom[step], dy - zoom[step] * y0[step]]])
            # Shake can push the view a few pixels past the photo: repeat its edge rather than show black.
            frame = cv2.warpAffine(image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            cover = None
            for start, duration, direction, width in passes:
                if start <= source < start + duration:
                    cover = walker_mask((source - start) / (duration - 1), direction, width)
                    frame = (frame * (1 - cover[..., None]) + np.multiply(cover[..., None], WALKER_COLOUR))
                    frame = frame.astype(np.uint8)
            frame = cv2.convertScaleAbs(frame, alpha=float(brightness[source]))
            if source in blurred:
                frame = motion_blur(frame, *blurred[source])
            truth_frames.append({
                "frame": len(truth_frames), "source_frame": source, "time": round(source / FPS, 3),
                "faces": faces_in_frame(annotation.boxes, ids, matrix, cover),
            })
            writer.write(frame)
    writer.release()
    return {"fps": FPS, "frame_size": [WIDTH, HEIGHT], "people": people, "frames": truth_frames}


def truth_path(clip):
    return Path(clip).with_suffix(".truth.json")


def make_clips(voc, output, clips=3, photos=12, seconds_per_photo=4.0, seed=0):
    """Write ``clips`` clips of ``photos`` different photos each into ``output``; return their paths."""
    rng = np.random.default_rng(seed)
    chosen = choose_photos(voc, clips * photos, rng)
    if len(chosen) < clips * photos:
        raise UserError(f"{voc} has only {len(chosen)} photos with faces that fit a clip, {clips * photos} needed")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(clips):
        path = output / f"clip_{number + 1:02d}.mp4"
        truth = make_clip(chosen[number * photos:(number + 1) * photos], path, seconds_per_photo, rng)
        truth_path(path).write_text(json.dumps(truth), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", required=True, help="PASCAL VOC folder with images/ and annotations/")
    parser.add_argument("--output", required=True, help="folder for the clips and their .truth.json files")
    parser.add_argument("--clips", type=at_least(1), default=3)
    parser.add_argument("--photos", type=at_least(1), default=12, help="photos per clip (no photo is used twice)")
    parser.add_argument("--seconds-per-photo", type=at_least(1.0, float), default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in make_clips(args.voc, args.output, args.clips, args.photos, args.seconds_per_photo, args.seed):
        truth = json.loads(truth_path(path).read_text(encoding="utf-8"))
        print(f"{path}: {len(truth['frames'])} frames, {len(truth['people'])} people")


if __name__ == "__main__":
    run_cli(main)
