"""Heads that turn from profile to profile, each wearing a mask right: how many does the live script flag?

    python benchmarks/bench_turning.py --voc evaluation/facemask_voc_dev

Makes a clip (640x480, 25 fps) from the unmasked faces of annotated street
photos, which training never sees: each face gets a mask worn correctly
(the synthetic engine), then turns in 3-D from -75 to +75 degrees and back,
looking a little up or down, with blank frames between people so that each
is a person of their own. The live script runs on it as a user runs it; the
table gives the people it counted, how it labelled them, and its alerts.
Every person wears a mask right, so every alert is a false one: the goal is
none. ``--script-args`` runs the script with other flags (another --model).
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mask_detector.cli import at_least  # noqa: E402
from mask_detector.errors import UserError, run_cli  # noqa: E402
from mask_detector.evaluation import load_voc  # noqa: E402
from mask_detector.faces import CROP_DETECT_SIZE, YuNetDetector, faces_in_crop  # noqa: E402
from mask_detector.files import read_image  # noqa: E402
from mask_detector.synthetic.geometry import landmark_problem  # noqa: E402
from mask_detector.synthetic.head import turn_face  # noqa: E402
from mask_detector.synthetic.masks import draw_mask, random_style  # noqa: E402
from mask_detector.synthetic.views import upright  # noqa: E402

FPS = 25
WIDTH, HEIGHT = 640, 480
# Faces smaller than this in their photo are too soft to enlarge to a door camera's close view.
LEAST_SOURCE_FACE = 48
FACE_SIDE = 150  # the face's width in the clip, about as a door camera sees a person 2 m away
MOST_YAW = 75.0
FRAMES_PER_SWEEP = 50  # -75 to +75, then back: 4 s a person
BLANK_FRAMES = 30  # between people: longer than the tracker keeps a lost face


def unmasked_faces(voc, count):
    """(crop, landmarks) of up to ``count`` large, upright, unmasked faces of the annotated photos."""
    detector = YuNetDetector(detect_size=CROP_DETECT_SIZE)
    faces = []
    for annotation in load_voc(voc):
        for box, label in zip(annotation.boxes.astype(int), annotation.labels):
            x1, y1, x2, y2 = box
            if label != "no_mask" or max(x2 - x1, y2 - y1) < LEAST_SOURCE_FACE:
                continue
            image = read_image(annotation.image)
            margin = int(0.6 * max(x2 - x1, y2 - y1))
            crop = image[max(0, y1 - margin):y2 + margin, max(0, x1 - margin):x2 + margin]
            scale = FACE_SIDE / max(x2 - x1, 1)
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            found = faces_in_crop(detector, crop)
            if len(found) == 1 and not landmark_problem(found[0].landmarks) and upright(found[0].landmarks):
                faces.append((crop, found[0].landmarks))
            if len(faces) == count:
                return faces
    return faces


def sweep(frames):
    """Yaw at each frame of a sweep: out to one profile and back through the front to the other."""
    half = np.linspace(-MOST_YAW, MOST_YAW, frames // 2)
    return np.concatenate([half, half[::-1]])


def make_clip(faces, path, seed):
    """Write the clip; returns how many people are in it."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    blank = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    for crop, landmarks in faces:
        masked = draw_mask(crop, landmarks, random_style(rng), "correct", rng)
        pitch = rng.uniform(-15, 15)
        for yaw in sweep(FRAMES_PER_SWEEP):
            turned, _ = turn_face(masked, landmarks, float(yaw), pitch, crop)
            frame = blank.copy()
            height, width = min(turned.shape[0], HEIGHT), min(turned.shape[1], WIDTH)
            top, left = (HEIGHT - height) // 2, (WIDTH - width) // 2
            frame[top:top + height, left:left + width] = turned[:height, :width]
            writer.write(frame)
        for _ in range(BLANK_FRAMES):
            writer.write(blank)
    writer.release()
    return len(faces)


def run_live(clip, events, script_args):
    command = [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip), "--no-display",
               "--events", str(events), *script_args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"the live script failed: {result.stderr.strip().splitlines()[-1:]}")
    return [json.loads(line) for line in Path(events).read_text().splitlines()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", default=str(ROOT / "evaluation" / "facemask_voc_dev"),
                        help="annotated photos whose unmasked faces are turned (default: %(default)s)")
    parser.add_argument("--people", type=at_least(1), default=12, help="people in the clip (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masks and pitches (default: %(default)s)")
    parser.add_argument("--keep", help="keep the clip here (a .avi file)")
    parser.add_argument("--script-args", default="", help="more flags for detect_mask_video.py, quoted")
    args = parser.parse_args(argv)
    faces = unmasked_faces(args.voc, args.people)
    if not faces:
        raise UserError(f"no unmasked face of {LEAST_SOURCE_FACE} px or more in {args.voc}")
    with tempfile.TemporaryDirectory() as scratch:
        clip = Path(args.keep) if args.keep else Path(scratch) / "turning.avi"
        people = make_clip(faces, clip, args.seed)
        events = run_live(clip, Path(scratch) / "events.jsonl", shlex.split(args.script_args))
    persons = [event for event in events if event["event"] == "person"]
    alerts = [event for event in events if event["event"] == "alert"]
    labels = {}
    for person in persons:
        key = person["label"] if person["judged"] else "not judged"
        labels[key] = labels.get(key, 0) + 1
    print(f"| measure | value |\n|---|---|\n| people in the clip (mask worn right, yaw -75 to 75) | {people} |")
    print(f"| people counted | {len(persons)} |")
    print(f"| people by label | {', '.join(f'{k} {v}' for k, v in sorted(labels.items())) or 'none'} |")
    print(f"| mask wearers flagged (alerts) | {len(alerts)} |")
    return 0


if __name__ == "__main__":
    run_cli(main)
