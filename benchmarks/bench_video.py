"""The live script as a user runs it, against the classic pipeline, on the same video files.

    python benchmarks/bench_video.py

Writes two 640x480 clips (the one-face and nine-face frames of
bench_pipeline.py, 900 frames each) and measures, in one run, taking turns:
- the classic pipeline (SSD at 300x300, then model.predict on 224x224 crops,
  every frame, drawing the boxes), reading the clip frame by frame;
- `detect_mask_video.py --source CLIP --no-display` with its defaults, and
  with each --model given; its frames per second are those it reports, and
  "first frame" is the time from starting the process to its first JSON
  line (`--json -`): imports, model loading, opening the clip and the first
  frame's work.
A second table says where a frame's time goes in the script's runs, stage
by stage (its --profile): medians of milliseconds a frame.
A file is read as fast as it is processed, so these are end-to-end rates:
decode, detect, track, classify, draw. Medians over the runs.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from bench_pipeline import make_frames, time_frame  # noqa: E402
from mask_detector.faces import YuNetDetector  # noqa: E402


def write_clip(frame, path, count):
    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
    for _ in range(count):
        writer.write(frame)
    writer.release()


def run_script(clip, extra):
    """(frames per second, seconds to the first frame, people, its profile) of one run of the live script."""
    command = [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip), "--no-display",
               "--json", "-", "--profile", *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_line = process.stdout.readline()
    first_frame = time.perf_counter() - start
    last = first_line
    for line in process.stdout:
        last = line
    stderr = process.stderr.read()
    if process.wait() != 0 or not last.startswith('{"summary"'):
        sys.exit(f"error: the live script failed on {clip.name}: {stderr.strip()[-500:]}")
    summary = json.loads(last)["summary"]
    return summary["fps"], first_frame, summary["people"], summary["profile"]


def run_classic(pipeline, clip, most_frames):
    """Frames per second of the classic pipeline over the clip, read frame by frame as a script would."""
    capture = cv2.VideoCapture(str(clip))
    frames, start = 0, time.perf_counter()
    while frames < most_frames:
        ok, frame = capture.read()
        if not ok:
            break
        time_frame(pipeline, frame)
        frames += 1
    capture.release()
    return frames / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="also run the script with this --model")
    parser.add_argument("--also", action="append", default=[], metavar="FLAGS",
                        help='also run the script with these flags, e.g. "--output {scratch}/out.avi --privacy blur" '
                        "({scratch}: a folder removed at the end)")
    # Long enough (30 s of 30 fps video) that start-up weighs little in the rate.
    parser.add_argument("--frames", type=int, default=900)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-classic", action="store_true", help="skip the classic pipeline (it loads Keras)")
    # The classic pipeline runs at a few frames per second: its rate settles within a few seconds.
    parser.add_argument("--classic-frames", type=int, default=150, help="frames of each clip it runs on")
    args = parser.parse_args()

    runs = {"this project, default command": []} | {f"this project, --model {Path(m).name}": ["--model", m]
                                                    for m in args.model}
    classic = None
    if not args.no_classic:
        from classic import ClassicPipeline  # benchmarks/classic.py, beside this script

        classic = ClassicPipeline()
    with tempfile.TemporaryDirectory() as scratch:
        runs |= {f"this project, {flags}": shlex.split(flags.replace("{scratch}", scratch)) for flags in args.also}
        clips = {}
        for kind, frame in make_frames(YuNetDetector()).items():
            clips[kind] = Path(scratch) / f"{kind.replace(' ', '_')}.mp4"
            write_clip(frame, clips[kind], args.frames)
        results = {}
        for round_number in range(args.repeats):  # turns, so that a busy machine slows every row alike
            for kind, clip in clips.items():
                if classic:
                    results.setdefault(("classic (SSD + model.predict, every frame)", kind), []).append(
                        (run_classic(classic, clip, args.classic_frames), None, None, None))
                for name, extra in runs.items():
                    results.setdefault((name, kind), []).append(run_script(clip, extra))
            print(f"round {round_number + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    print(f"{args.frames}-frame 640x480 clips, medians of {args.repeats} runs")
    print("| pipeline | clip | FPS | first frame s | people counted | speed-up |")
    print("|---|---|---|---|---|---|")
    for kind in clips:
        base = None
        for (name, clip_kind), values in results.items():
            if clip_kind != kind:
                continue
            fps = statistics.median(v[0] for v in values)
            base = base or (fps if name.startswith("classic") else None)
            first = [v[1] for v in values if v[1] is not None]
            people = [v[2] for v in values if v[2] is not None]
            print(f"| {name} | {kind} | {fps:.0f} | {f'{statistics.median(first):.2f}' if first else ''} "
                  f"| {people[0] if people else ''} | {f'{fps / base:.1f}x' if base else ''} |", flush=True)
    print_profiles(results)


def print_profiles(results):
    """Where a frame's time goes in each run of the script: medians of its --profile's milliseconds a frame."""
    rows = {key: [v[3] for v in values] for key, values in results.items() if values[0][3] is not None}
    if not rows:
        return
    stages = list(next(iter(rows.values()))[0]["stages_ms"])
    print("\nms a frame, by stage (the script's --profile; decode is its reader thread's CPU, the rest the loop's "
          "time; CPU is the process's, every thread)")
    print("| pipeline | clip | " + " | ".join(stages) + " | sum | CPU | detector on |")
    print("|---|---|" + "---|" * (len(stages) + 3))
    for (name, kind), profiles in rows.items():
        cells = [statistics.median(p["stages_ms"][stage] for p in profiles) for stage in stages]
        cells += [statistics.median(p["stages_total_ms"] for p in profiles),
                  statistics.median(p["cpu_ms"] for p in profiles)]
        share = statistics.median(p["detector_share"] for p in profiles)
        print(f"| {name} | {kind} | " + " | ".join(f"{cell:.1f}" for cell in cells) + f" | {100 * share:.0f} % |")


if __name__ == "__main__":
    main()
