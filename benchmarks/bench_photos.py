"""A folder of photos through detect_mask_image.py: one process, two, and Ray on this machine, in one run.

    python benchmarks/bench_photos.py

Runs the script as a user does, on the 214 dev photos, with --workers 1,
--workers 2 and --ray local, and again on the first 24 of them. Start-up
(imports, models loaded in each worker, Ray and its actors started) is paid
once by both runs, so the difference between the two tells the rate once it
is paid: rate = (214 - 24) / (time of all - time of 24), and start-up = time
of 24 - 24 / rate. The JSON outputs of the whole runs are compared byte for
byte with --workers 1.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = {"--workers 1": ["--workers", "1"], "--workers 2": ["--workers", "2"], "--ray local": ["--ray", "local"]}


def seconds(images, flags, json_path):
    """Wall-clock seconds of one run of the script, from start to exit."""
    command = [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(images), "--no-display",
               "--restart", "--json", str(json_path), *flags]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        sys.exit(f"error: {' '.join(flags)} failed: {result.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=ROOT / "evaluation" / "facemask_voc_dev" / "images", type=Path)
    parser.add_argument("--few", type=int, default=24, help="photos of the short run that measures start-up")
    args = parser.parse_args()
    photos = sorted(args.images.iterdir())
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        few = Path(scratch) / "few"
        few.mkdir()
        for photo in photos[:args.few]:
            (few / photo.name).symlink_to(photo.resolve())
        for name, flags in RUNS.items():
            rows[name] = seconds(few, flags, few / "out.jsonl"), seconds(args.images, flags, Path(scratch) / name)
            print(f"{name} done", file=sys.stderr, flush=True)
        outputs = [(Path(scratch) / name).read_bytes() for name in RUNS]
    rates = {name: (len(photos) - args.few) / (whole - short) for name, (short, whole) in rows.items()}
    print(f"{len(photos)} photos of {args.images.parent.name}; start-up and rate from runs on all and on {args.few}")
    print("| run | start-up s | images/s once started | speed-up | total s, all photos "
          "| JSON identical to --workers 1 |")
    print("|---|---|---|---|---|---|")
    for (name, (short, whole)), output in zip(rows.items(), outputs):
        rate, same = rates[name], "yes" if output == outputs[0] else "NO"
        print(f"| {name} | {short - args.few / rate:.1f} | {rate:.2f} | {rate / rates['--workers 1']:.2f}x "
              f"| {whole:.1f} | {same} |")


if __name__ == "__main__":
    main()
