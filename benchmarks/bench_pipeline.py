"""Per-frame latency of live detection at 640x480: this project's pipeline against the classic one.

    python benchmarks/bench_pipeline.py
    python benchmarks/bench_pipeline.py --model models/mask_detector_float16.tflite --rounds 5

Two real frames are built from dataset images: one with one face, one with
nine (a 3x3 grid). Each pipeline detects, classifies and draws on each frame
many times; the pipelines take turns, round after round, so that a busy
machine slows them alike. Printed: the median detector, classifier, pose
(every face's yaw, pitch and roll) and total milliseconds per frame, frames
per second, and the speed-up over the classic pipeline (SSD at 300x300 +
model.predict per frame) measured in the same run.
"""

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mask_detector import DEFAULT_MODEL  # noqa: E402
from mask_detector.display import draw_results  # noqa: E402
from mask_detector.faces import YuNetDetector  # noqa: E402
from mask_detector.pipeline import LIVE, FaceResult, MaskPipeline, pose_of  # noqa: E402

FRAME_SIZE = (640, 480)


def portrait_images(count, seed=0):
    """``count`` single-face photos from the training data (they show one large face each)."""
    folder = ROOT / "dataset" / "chandrikadeb7" / "without_mask"
    paths = sorted(folder.glob("*.jpg"))
    if len(paths) < count:
        sys.exit(f"error: need {count} images in {folder}; run `python -m mask_detector.assets` first")
    rng = np.random.default_rng(seed)
    return [cv2.imread(str(paths[i])) for i in rng.permutation(len(paths))[: count * 4]]


def make_frames(face_detector):
    """A one-face and a nine-face 640x480 frame, checked to hold that many detectable faces."""
    width, height = FRAME_SIZE
    candidates = portrait_images(9)
    usable = []
    for image in candidates:
        tile = cv2.resize(image, (width // 3, height // 3))
        if len(face_detector.detect(tile)) == 1 and len(face_detector.detect(cv2.resize(image, FRAME_SIZE))) == 1:
            usable.append(image)
        if len(usable) == 9:
            break
    one = cv2.resize(usable[0], FRAME_SIZE)
    rows = [np.hstack([cv2.resize(usable[r * 3 + c], (width // 3, height // 3)) for c in range(3)]) for r in range(3)]
    nine = cv2.resize(np.vstack(rows), FRAME_SIZE)
    return {"1 face": one, "9 faces": nine}


class ProjectPipeline:
    def __init__(self, model, detect_size):
        self.pipeline = MaskPipeline(replace(LIVE, model=str(model), detect_size=detect_size))

    def detect(self, frame):
        return self.pipeline.face_detector.detect(frame)

    def classify(self, frame, faces):
        return self.pipeline.classify(frame, faces)

    def poses(self, faces):
        """Each face's pose, which judging weighs as it weighs size."""
        return [pose_of(face) for face in faces]


def time_frame(pipeline, frame):
    """Milliseconds for (detect, classify, pose, total incl. drawing) on a copy of ``frame``, and faces found.

    The classic pipeline estimates no pose: its pose time is 0."""
    frame = frame.copy()
    start = time.perf_counter()
    faces = pipeline.detect(frame)
    detected = time.perf_counter()
    probabilities = pipeline.classify(frame, faces)
    classified = time.perf_counter()
    if hasattr(pipeline, "poses"):
        poses = pipeline.poses(faces)
        posed = time.perf_counter()
    else:
        poses, posed = [None] * len(faces), classified
    draw_results(frame, [FaceResult(f.box, f.score, p, pose=pose)
                         for f, p, pose in zip(faces, probabilities, poses) if p is not None])
    done = time.perf_counter()
    return ((detected - start) * 1e3, (classified - detected) * 1e3, (posed - classified) * 1e3,
            (done - start) * 1e3, len(faces))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="classifier(s) to measure (default: the shipped .h5 "
                        "and its .tflite exports when present)")
    parser.add_argument("--detect-size", type=int, action="append",
                        help="YuNet input's longer side, as the live script's --detect-size; repeat to compare "
                        "(default: 640 and 320)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=40, help="timed frames per pipeline, frame and round")
    args = parser.parse_args()

    from classic import ClassicPipeline  # benchmarks/classic.py, beside this script

    models = args.model or [str(DEFAULT_MODEL)] + [
        str(p) for p in sorted(DEFAULT_MODEL.parent.glob(f"{DEFAULT_MODEL.stem}_*.tflite"))
    ]
    pipelines = {"classic (SSD + model.predict)": ClassicPipeline()}
    for model in models:
        for detect_size in args.detect_size or (640, 320):
            pipelines[f"this project, {Path(model).name}, detect {detect_size}"] = ProjectPipeline(model, detect_size)
    frames = make_frames(YuNetDetector())
    print(f"{os.cpu_count()} CPUs, OpenCV {cv2.__version__}, {args.rounds} rounds x {args.frames} frames; "
          f"medians of per-round medians", flush=True)

    samples = {(name, kind): [] for name in pipelines for kind in frames}
    for round_number in range(args.rounds):
        for name, pipeline in pipelines.items():
            for kind, frame in frames.items():
                for _ in range(3):  # warm-up: first calls build graphs and allocate
                    time_frame(pipeline, frame)
                timings = [time_frame(pipeline, frame) for _ in range(args.frames)]
                samples[(name, kind)].append([statistics.median(column) for column in zip(*timings)])
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    print("| pipeline | frame | faces found | detector ms | classifier ms | pose ms | total ms | FPS | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    classic_name = next(iter(pipelines))
    for kind in frames:
        classic_total = statistics.median(r[3] for r in samples[(classic_name, kind)])
        for name in pipelines:
            rounds = samples[(name, kind)]
            detect_ms, classify_ms, pose_ms, total_ms, faces = (statistics.median(r[i] for r in rounds)
                                                                for i in range(5))
            print(f"| {name} | {kind} | {faces:.0f} | {detect_ms:.1f} | {classify_ms:.1f} | {pose_ms:.2f} | "
                  f"{total_ms:.1f} | {1000 / total_ms:.0f} | {classic_total / total_ms:.1f}x |")


if __name__ == "__main__":
    main()
