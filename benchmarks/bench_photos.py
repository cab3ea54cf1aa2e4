"""A folder of photos through detect_mask_image.py: one process, two, and Ray on this machine, in one run.

    python benchmarks/bench_photos.py

Runs the script as a user does, on the 214 dev photos (each copied --copies
times under another name, so that the rate is measured over a longer run),
with --workers 1, --workers 2 and --ray local, and again on the first 24. Start-up
(imports, models loaded in each worker, Ray and its actors started) is paid
once by both runs, so the difference between the two tells the rate once it
is paid: rate = (all - 24) / (time of all - time of 24), and start-up = time
of 24 - 24 / rate. The JSON outputs of the whole runs are compared byte for
byte with --workers 1.
"""

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = {"--workers 1": ["--workers", "1"], "--workers 2": ["--workers", "2"], "--ray local": ["--ray", "local"]}


def seconds(images, flags, json_path):
    """(wall-clock seconds, CPU seconds) of one run of the script, from start to exit.

    CPU seconds are those of the processes the run waited for (the script and
    its workers), so CPU / wall is the cores kept busy. Ray's daemons and actors
    are no children the script waits for: their time is not counted.
    """
    command = [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(images), "--no-display",
               "--restart", "--json", str(json_path), *flags]
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        sys.exit(f"error: {' '.join(flags)} failed: {result.stderr.strip()[-500:]}")
    return time.perf_counter() - start, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=ROOT / "evaluation" / "facemask_voc_dev" / "images", type=Path)
    parser.add_argument("--few", type=int, default=24, help="photos of the short run that measures start-up")
    parser.add_argument("--copies", type=int, default=3, help="times each photo is in the long run")
    args = parser.parse_args()
    originals = sorted(args.images.iterdir())
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        few, every = Path(scratch) / "few", Path(scratch) / "all"
        few.mkdir()
        every.mkdir()
        for photo in originals[:args.few]:
            (few / photo.name).symlink_to(photo.resolve())
        for copy in range(args.copies):
            for photo in originals:
                shutil.copyfile(photo, every / f"{copy}_{photo.name}")  # a link would be the same photo, done once
        photos = sorted(every.iterdir())
        for name, flags in RUNS.items():
            rows[name] = seconds(few, flags, few / "out.jsonl"), seconds(every, flags, Path(scratch) / name)
            print(f"{name} done", file=sys.stderr, flush=True)
        outputs = [(Path(scratch) / name).read_bytes() for name in RUNS]
    rates = {name: (len(photos) - args.few) / (whole[0] - short[0]) for name, (short, whole) in rows.items()}
    print(f"{len(photos)} photos ({len(originals)} of {args.images.parent.name}, {args.copies} times each); "
          f"start-up and rate from runs on all and on {args.few}")
    print("| run | start-up s | images/s once started | speed-up | total s, all photos | cores busy, all photos "
          "| JSON identical to --workers 1 |")
    print("|---|---|---|---|---|---|---|")
    for (name, (short, whole)), output in zip(rows.items(), outputs):
        rate, same = rates[name], "yes" if output == outputs[0] else "NO"
        print(f"| {name} | {short[0] - args.few / rate:.1f} | {rate:.2f} | {rate / rates['--workers 1']:.2f}x "
              f"| {whole[0]:.1f} | {'-' if '--ray' in name else f'{whole[1] / whole[0]:.2f}'} | {same} |")


if __name__ == "__main__":
    main()
