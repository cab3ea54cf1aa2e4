"""Frames per second of the live script itself on video files, headless, as a user would run it.

    python benchmarks/bench_video.py

Writes two 640x480 clips (the one-face and nine-face frames of
bench_pipeline.py, 900 frames each), runs `detect_mask_video.py --source
CLIP --no-display` on them with each model, and prints the median of the
frames-per-second figure the script reports. A file is read as fast as it
is processed, so this is the script's end-to-end rate: decode, detect,
classify, draw.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from bench_pipeline import make_frames  # noqa: E402
from mask_detector import DEFAULT_MODEL  # noqa: E402
from mask_detector.faces import YuNetDetector  # noqa: E402


def write_clip(frame, path, count):
    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
    for _ in range(count):
        writer.write(frame)
    writer.release()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="default: the .h5 and its float16 export")
    # Long enough (30 s of 30 fps video) that start-up (first inference, buffers) weighs little.
    parser.add_argument("--frames", type=int, default=900)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = args.model or [str(DEFAULT_MODEL), str(DEFAULT_MODEL.with_name(f"{DEFAULT_MODEL.stem}_float16.tflite"))]

    print("| model | clip | frames | faces per frame | FPS (median of runs) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        clips = {}
        for kind, frame in make_frames(YuNetDetector()).items():
            clips[kind] = Path(scratch) / f"{kind.replace(' ', '_')}.mp4"
            write_clip(frame, clips[kind], args.frames)
        for model in models:
            for kind, clip in clips.items():
                rates, faces = [], 0
                for _ in range(args.repeats):
                    result = subprocess.run(
                        [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip), "--no-display",
                         "--model", model],
                        cwd=ROOT, capture_output=True, text=True,
                    )
                    summary = re.search(r"frames (\d+), seconds [\d.]+, fps ([\d.]+), faces (\d+)", result.stdout)
                    if result.returncode != 0 or not summary:
                        sys.exit(f"error: the live script failed on {clip.name}: {result.stderr.strip()[-500:]}")
                    rates.append(float(summary.group(2)))
                    faces = int(summary.group(3)) / int(summary.group(1))
                print(f"| {Path(model).name} | {kind} | {args.frames} | {faces:.1f} | {statistics.median(rates):.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
