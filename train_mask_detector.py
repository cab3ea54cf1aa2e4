"""Fine-tune an ImageNet MobileNetV2 to tell masked faces from unmasked ones.

    python train_mask_detector.py --dataset dataset
    python train_mask_detector.py --dataset dataset/observations --dataset dataset/chandrikadeb7

Each training image is first cut to the face box YuNet gives it, as the
classifier meets faces at run time (--no-locate-faces: whole images).
Writes the model as .h5 and .keras, a JSON model card, a plot of the curves
and TensorBoard logs (`tensorboard --logdir logs`). The defaults are in the
project's folder, wherever the script is run from. The classic recipe's
flags work too: -d/--dataset, -m/--model (the model to write) and -p/--plot.
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from mask_detector import DEFAULT_DATASET, DEFAULT_MODEL, PROJECT_ROOT, plural
from mask_detector.cli import at_least, new_parser
from mask_detector.errors import run_cli
from mask_detector.files import check_writable


def parse_args(argv):
    from mask_detector.data import default_face_cache, least_images_per_class

    parser = new_parser(__doc__)
    parser.add_argument("-d", "--dataset", action="append",
                        help=f"dataset folder; repeat to merge (default: {DEFAULT_DATASET})")
    parser.add_argument("--output", "-m", "--model", dest="output", default=str(DEFAULT_MODEL), help="model path, .h5")
    parser.add_argument("-p", "--plot", help="where to write the plot of the curves (default: beside the model)")
    # The new head settles within a few epochs; unfreezing the backbone's top blocks
    # afterwards is what lifts accuracy on real street photos.
    parser.add_argument("--epochs", type=at_least(1), default=5, help="most epochs with the backbone frozen")
    parser.add_argument("--fine-tune-epochs", type=at_least(0), default=5, help="then this many with its top unfrozen")
    parser.add_argument("--patience", type=at_least(1), default=2,
                        help="a phase ends after this many epochs in a row that do not matter (see --least-gain)")
    # Validation loss is the mean log loss per image. Below a gain of 0.005 the head only grows surer of faces
    # it already has right: on a dataset learnt in one epoch, each later epoch gains less than a thousandth.
    parser.add_argument("--least-gain", type=float, default=0.005,
                        help="an epoch matters when it lowers the validation loss by at least this much")
    parser.add_argument("--batch-size", type=at_least(1), default=32, help="images per training step")
    parser.add_argument("--image-size", type=at_least(32), default=128, help="side of the square face crop")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="of the first phase; fine-tuning uses 1/100")
    parser.add_argument("--max-per-class", type=at_least(0), default=0, help="use at most N images per class (0: all)")
    parser.add_argument("--logdir", default=str(PROJECT_ROOT / "logs"), help="TensorBoard folder")
    parser.add_argument("--seed", type=int, default=42, help="makes the split and the training repeatable")
    parser.add_argument("--class-weights", choices=("balanced", "none"), default="balanced",
                        help="balanced: each class weighs in the loss inversely to its share of the images")
    # Datasets crop their faces their own way; the classifier meets faces as YuNet boxes them.
    parser.add_argument("--locate-faces", action=argparse.BooleanOptionalAction, default=True,
                        help="cut each training image to the face box YuNet gives it, as at run time")
    # The same crop is used at run time (the card says which); faces without landmarks are cut at their box.
    parser.add_argument("--face-cache", metavar="DIR", default=str(default_face_cache()),
                        help="keep the faces located in each image here, by its sha256, so that the next run on the "
                        "same images skips the face detector (the user's cache folder: XDG_CACHE_HOME or ~/.cache)")
    parser.add_argument("--no-face-cache", action="store_true", help="locate every face anew and keep none")
    parser.add_argument("--crop", choices=("box", "aligned"), default="aligned",
                        help="box: the face detector's box, stretched square; aligned: warped by YuNet's five "
                        "landmarks onto one template (turn, scale and place alike for every face)")
    args = parser.parse_args(argv)
    args.dataset = args.dataset or [str(DEFAULT_DATASET)]
    if args.crop == "aligned" and not args.locate_faces:
        parser.error("--crop aligned needs the faces' landmarks, which locating the faces finds: "
                     "drop --no-locate-faces")
    if Path(args.output).suffix.lower() != ".h5":
        parser.error("--output must end in .h5 (a .keras copy is written beside it)")
    if 0 < args.max_per_class < least_images_per_class():
        parser.error(f"--max-per-class must be 0 (all) or at least {least_images_per_class()}, "
                     f"so that the test and validation splits hold each class")
    return args


def _exit_interrupted(checkpoint):
    """Ctrl-C during training: say what is kept, and leave at once."""
    kept = f"; best checkpoint so far kept at {checkpoint.path}" if checkpoint.saved else ""
    print(f"interrupted: no final model written{kept}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # Straight out: tf.data's reading threads, stopped mid-batch, abort the process if the
    # interpreter winds down around them ("terminate called without an active exception").
    # The checkpoint is already whole on disk.
    os._exit(130)


def _print_judging(calibration, judging):
    """The calibration and the judging chosen on the validation split, a line each, and a line per pose angle."""
    print(f"calibrated on the validation split: temperature {calibration['temperature']:.2f}; faces judged from "
          f"{judging['min_face_size']} px, a flag needs a violation probability of "
          + ", ".join(f"{t:.2f} at {side} px" for side, t in judging["flag_probabilities"].items()))
    for name in judging.get("pose_probabilities", {}):
        print(f"  {name}: " + ", ".join(f"{row['degrees']} deg " + ("not judged" if row["flag_probability"] is None
                                                                    else f"{row['flag_probability']:.2f}")
                                        for row in judging["by_pose"] if row["angle"] == name))


def main(argv=None):
    args = parse_args(argv)
    output = Path(args.output)
    logs = Path(args.logdir) / f"{output.stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    for path in (output, args.plot or output, logs):
        check_writable(path)
    from mask_detector.quiet import import_tensorflow

    started = time.perf_counter()  # TensorFlow's import is the first step: some seconds on a small machine
    import_tensorflow()  # first, without its start-up lines; Keras (training) would import it loudly
    from mask_detector import data, training

    steps = training.StepTimes(started)
    steps.seconds["imports"] = time.perf_counter() - started
    training.set_seed(args.seed)
    face_cache = None if args.no_face_cache else args.face_cache
    counts, (train, validation, test) = data.load_split(args.dataset, args.max_per_class, args.seed,
                                                        locate=args.locate_faces, face_cache=face_cache,
                                                        step=steps.step)
    size, batch = args.image_size, args.batch_size
    aligned = args.crop == "aligned"
    with steps.step("cut faces"):  # each training and validation photo read once, for every epoch
        train_crops = data.face_crops(train, size, aligned)
        validation_crops = data.face_crops(validation, size, aligned)
    train_data = data.crop_batches(train_crops, train.labels, batch, training=True, seed=args.seed)
    validation_data = data.crop_batches(validation_crops, validation.labels, batch)
    test_data = data.make_dataset(test, size, batch, aligned=aligned)  # read once: streamed

    checkpoint = training.BestCheckpoint(output.with_name(f"{output.stem}.checkpoint.keras"))
    callbacks = training.standard_callbacks(args.patience, logs, args.least_gain) + [checkpoint]
    classes = train.class_names
    split, history, seconds = _fit(args, training, steps, train, train_data, validation_data, callbacks, checkpoint)
    model = split.model
    with steps.step("calibrate"):
        by_size = training.probabilities_by_size(split, validation_crops, batch)
        # Synthetic faces are binned by the pose they were drawn at, real ones by the pose their landmarks give.
        poses = validation.poses() if validation.landmarks else None
        calibration, judging, (before, after, truth) = training.calibrate(model, by_size, validation.labels,
                                                                          classes, size, poses)
    _print_judging(calibration, judging)
    with steps.step("test"):
        report, test_figures = training.score_on_test_split(split, test_data, test.labels, classes)
    print(report)
    card = training.model_card(output, args.dataset, args.seed, size, counts, history, seconds, test_figures,
                               classes, args.crop) | {"calibration": calibration, "judging": judging,
                                                      "seconds_by_step": {name: round(seconds, 1) for name, seconds
                                                                          in steps.seconds.items()}}
    with steps.step("write"):
        written = training.save_outputs(model, history, card, output, args.plot)
        written.append(training.reliability_path_for(output))
        training.plot_reliability(before, after, truth, written[-1])
        checkpoint.path.unlink(missing_ok=True)
    print(f"test accuracy {test_figures['accuracy']:.4f}; {plural(card['epochs_trained'], 'epoch')} "
          f"in {seconds:.0f} s")
    print(f"wrote {', '.join(str(path.resolve()) for path in written)}; TensorBoard logs in {logs.resolve()}")
    print(steps.line())
    return 0


def _fit(args, training, steps, train, train_data, validation_data, callbacks, checkpoint):
    """The training phases, each a timed step: build, train frozen, unfreeze and fine-tune; returns (the
    training.SplitModel, history, the seconds of those steps). Ctrl-C between batches keeps the best
    checkpoint and stops."""
    weights = training.class_weights(train.labels) if args.class_weights == "balanced" else None
    with training.InterruptBetweenBatches() as interrupt:
        callbacks.append(interrupt)
        try:
            with steps.step("build"):
                model = training.build_model(args.image_size, train.class_names)
                split = training.SplitModel(model)
                checkpoint.whole = model
            with steps.step("train frozen"):
                history = training.train_head(split, train_data, validation_data, args.epochs, args.learning_rate,
                                              callbacks, weights, args.seed, args.batch_size)
            if args.fine_tune_epochs:
                with steps.step("fine-tune"):
                    training.unfreeze_top(model)
                    history = training.fine_tune(split, train_data, validation_data, args.fine_tune_epochs,
                                                 args.learning_rate / 100, callbacks, history, weights,
                                                 args.batch_size)
        except KeyboardInterrupt:
            _exit_interrupted(checkpoint)
    return split, history, sum(steps.seconds.get(name, 0.0) for name in ("build", "train frozen", "fine-tune"))


if __name__ == "__main__":
    run_cli(main)
