"""Training wall time, peak memory and test accuracy: this project's training against the classic recipe.

    python benchmarks/bench_training.py                 # seed dataset: both; make train's data: this project
    python benchmarks/bench_training.py --no-all-data   # the seed dataset only (some 17 minutes)
    python benchmarks/bench_training.py --repeats 3
    python benchmarks/bench_training.py --step-costs    # what an image costs in each step, Keras against LiteRT

Each run is a separate process, so its peak memory (maximum resident set
size) is its own. Both are scored on the same duplicate-free test split
(the same seed). The classic recipe holds every image in memory as float32,
so its peak grows with the dataset; this project holds each face as a
0-255 crop at the model's input size (uint8), and the test split not at all.

This project trains on each dataset twice: first with an empty cache of
located faces (a cache folder of its own), as a first run on new images,
then again with the faces that run located, as every later run on the same
images. A second table gives each of its runs' seconds by step (the model
card's seconds_by_step).

--step-costs times, in this process, what training computes for an image:
the whole model and the layers no phase trains, in Keras and as a LiteRT
copy, and a fine-tuning step through the whole model against one through
training.SplitModel (the copy, then Keras on the layers above it).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_measured(command):
    """Run ``command``; return (wall seconds, peak resident MB, exit status)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read()
    process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"error: {' '.join(map(str, command))} failed:\n{stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, code  # ru_maxrss is in KiB on Linux


def project_run(datasets, scratch, face_cache, flags=()):
    """(seconds, peak MB, test accuracy, images, seconds by step) of one training run, its located faces kept in
    ``face_cache``."""
    output = Path(scratch) / "model.h5"
    command = [sys.executable, "train_mask_detector.py", "--output", str(output),
               "--logdir", str(Path(scratch) / "logs"), "--face-cache", str(face_cache), *flags]
    for dataset in datasets:
        command += ["--dataset", dataset]
    seconds, peak, _ = run_measured(command)
    card = json.loads(output.with_suffix(".json").read_text())
    images = card["images"]
    return (seconds, peak, card["test_split"]["accuracy"], images["train"] + images["validation"] + images["test"],
            card["seconds_by_step"])


def classic_run(datasets, scratch, face_cache=None, flags=()):
    result_path = Path(scratch) / "classic.json"
    command = [sys.executable, "benchmarks/classic.py", "--json", str(result_path)]
    for dataset in datasets:
        command += ["--dataset", dataset]
    seconds, peak, _ = run_measured(command)
    result = json.loads(result_path.read_text())
    return seconds, peak, result["test_accuracy"], result["train_images"] + result["test_images"], None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-dataset", default="dataset/observations")
    parser.add_argument("--all-data", nargs="+", default=["dataset", "dataset_synthetic"],
                        help="what make train trains on (default: %(default)s)")
    parser.add_argument("--all-data-flags", default="--image-size 160",
                        help="make train's other flags (default: %(default)s)")
    parser.add_argument("--no-all-data", action="store_true",
                        help="leave out the two runs on all data (some 16 minutes)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each; medians are printed")
    parser.add_argument("--classic-on-all-data", action="store_true", help="also run the classic recipe on all data")
    parser.add_argument("--step-costs", action="store_true", help="time what an image costs in each step instead")
    parser.add_argument("--image-size", type=int, default=160, help="for --step-costs (default: %(default)s)")
    parser.add_argument("--images", type=int, default=256, help="for --step-costs (default: %(default)s)")
    args = parser.parse_args()
    if args.step_costs:
        return print_step_costs(args.image_size, args.images)

    first, cached = "this project, faces not yet located", "this project, faces located by the run before"
    seed, everything = [args.seed_dataset], args.all_data
    flags = args.all_data_flags.split()
    plans = [("classic recipe", seed, classic_run, ()), (first, seed, project_run, ()),
             (cached, seed, project_run, ())]
    if not args.no_all_data:
        plans += [(first, everything, project_run, flags), (cached, everything, project_run, flags)]
    if args.classic_on_all_data:
        plans.append(("classic recipe", everything, classic_run, ()))
    results = {index: [] for index in range(len(plans))}
    print(f"{os.cpu_count()} CPUs; {args.repeats} run(s) each, medians", flush=True)
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as face_cache:  # empty for each dataset's first run, then filled
            for index, (name, datasets, run, extra) in enumerate(plans):
                faces = Path(face_cache) / "-".join(Path(dataset).name for dataset in datasets)
                if name == first:
                    shutil.rmtree(faces, ignore_errors=True)
                with tempfile.TemporaryDirectory() as scratch:
                    results[index].append(run(datasets, scratch, faces, extra))
                seconds, peak, accuracy, _, _ = results[index][-1]
                print(f"  run {repeat + 1}: {name} on {' '.join(datasets)}: {seconds:.0f} s, {peak:.0f} MB, "
                      f"accuracy {accuracy:.4f}", file=sys.stderr, flush=True)
    print_tables(plans, results)


def print_tables(plans, results):
    """The runs' medians, with each run's speed-up over the classic recipe on the same data; then the steps."""
    print("| recipe | dataset | images | wall time s | peak memory MB | test accuracy | speed-up |")
    print("|---|---|---|---|---|---|---|")
    classic_seconds = {}
    for index, (name, datasets, _, extra) in enumerate(plans):
        seconds, peak, accuracy, images = (statistics.median(r[i] for r in results[index]) for i in range(4))
        data = " + ".join(datasets) + (f" ({' '.join(extra)})" if extra else "")
        if name == "classic recipe":
            classic_seconds[tuple(datasets)] = seconds
        baseline = classic_seconds.get(tuple(datasets))
        speedup = f"{baseline / seconds:.1f}x" if baseline and name != "classic recipe" else ""
        print(f"| {name} | {data} | {images:.0f} | {seconds:.0f} | {peak:.0f} | {accuracy:.4f} | {speedup} |")
    steps = [(plans[index][:2], [r[4] for r in runs]) for index, runs in results.items() if runs[0][4]]
    names = list(steps[0][1][0])
    print("\nseconds by step, this project's runs (medians; the model card's seconds_by_step)")
    print("| run | dataset | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for (name, datasets), cards in steps:
        print(f"| {name} | {' + '.join(datasets)} | "
              + " | ".join(f"{statistics.median(card.get(step, 0.0) for card in cards):.1f}" for step in names) + " |")


def print_step_costs(image_size, count, batch_size=32):
    """Milliseconds an image: predicting and a fine-tuning step, in Keras and through the LiteRT copy."""
    sys.path.insert(0, str(ROOT))
    from mask_detector.quiet import import_tensorflow

    import_tensorflow()
    import numpy as np

    from mask_detector import training

    model = training.build_model(image_size, ("mask", "no_mask", "incorrect"))
    split = training.SplitModel(model)
    images = np.random.default_rng(0).uniform(0, 255, (count, image_size, image_size, 3)).astype("float32")
    labels = np.arange(count) % 3
    batches = [(images[start:start + batch_size], labels[start:start + batch_size])
               for start in range(0, count, batch_size)]
    frozen_outputs = [split.frozen_copy(batch) for batch, _ in batches]
    training.unfreeze_top(model)
    for part in (model, split.trained):
        part.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rows = [
        ("predict, whole model", "Keras", lambda: model.predict(images, batch_size=batch_size, verbose=0)),
        ("predict, whole model", "SplitModel", lambda: [split.trained.predict_on_batch(split.frozen_copy(batch))
                                                          for batch, _ in batches]),
        ("layers no phase trains", "Keras", lambda: split.frozen.predict(images, batch_size=batch_size, verbose=0)),
        ("layers no phase trains", "LiteRT copy", lambda: [split.frozen_copy(batch) for batch, _ in batches]),
        ("fine-tuning step", "Keras, whole model", lambda: [model.train_on_batch(batch, label)
                                                            for batch, label in batches]),
        ("fine-tuning step", "LiteRT copy + Keras above it",
         lambda: [split.trained.train_on_batch(split.frozen_copy(batch), label) for batch, label in batches]),
        ("fine-tuning step", "Keras above the copy alone",
         lambda: [split.trained.train_on_batch(outputs, label)
                  for outputs, (_, label) in zip(frozen_outputs, batches)]),
    ]
    print(f"{os.cpu_count()} CPUs; {count} images of {image_size} px in batches of {batch_size}; "
          "ms an image, the second of two passes")
    print("| what | computed by | ms an image |")
    print("|---|---|---|")
    for what, by, run in rows:
        run()  # the first pass traces and warms up
        start = time.perf_counter()
        run()
        print(f"| {what} | {by} | {(time.perf_counter() - start) / count * 1000:.2f} |", flush=True)


if __name__ == "__main__":
    main()
