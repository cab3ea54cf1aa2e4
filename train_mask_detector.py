"""Fine-tune an ImageNet MobileNetV2 to tell masked faces from unmasked ones.

    python train_mask_detector.py --dataset dataset
    python train_mask_detector.py --dataset dataset/observations --dataset dataset/chandrikadeb7

Writes the model as .h5 and .keras, a JSON model card, a plot of the curves
and TensorBoard logs (`tensorboard --logdir logs`).
"""

import datetime
import sys
from pathlib import Path

from mask_detector.cli import at_least, new_parser
from mask_detector.errors import run_cli
from mask_detector.files import check_writable


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--dataset", action="append", help="dataset folder; repeat to merge (default: dataset)")
    parser.add_argument("--output", default="models/mask_detector.h5", help="model path, .h5")
    # The new head settles within a few epochs; unfreezing the backbone's top blocks
    # afterwards is what lifts accuracy on real street photos.
    parser.add_argument("--epochs", type=at_least(1), default=5, help="most epochs with the backbone frozen")
    parser.add_argument("--fine-tune-epochs", type=at_least(0), default=3, help="then this many with its top unfrozen")
    parser.add_argument("--patience", type=at_least(1), default=3, help="epochs without improvement before stopping")
    parser.add_argument("--batch-size", type=at_least(1), default=32)
    parser.add_argument("--image-size", type=at_least(32), default=128, help="side of the square face crop")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-per-class", type=at_least(0), default=0, help="use at most N images per class (0: all)")
    parser.add_argument("--logdir", default="logs", help="TensorBoard folder")
    parser.add_argument("--seed", type=int, default=42, help="makes the split and the training repeatable")
    args = parser.parse_args(argv)
    args.dataset = args.dataset or ["dataset"]
    if Path(args.output).suffix != ".h5":
        parser.error("--output must end in .h5 (a .keras copy is written beside it)")
    return args


def main(argv=None):
    args = parse_args(argv)
    output = Path(args.output)
    run_name = f"{output.stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    check_writable(output)
    check_writable(Path(args.logdir) / run_name)
    from mask_detector import data, training

    training.set_seed(args.seed)
    counts, (train, validation, test) = data.load_split(args.dataset, args.max_per_class, args.seed)
    size, batch = args.image_size, args.batch_size
    train_data = data.make_dataset(train, size, batch, training=True, seed=args.seed)
    validation_data, test_data = data.make_dataset(validation, size, batch), data.make_dataset(test, size, batch)

    checkpoint = training.BestCheckpoint(output.with_name(f"{output.stem}.checkpoint.keras"))
    callbacks = training.standard_callbacks(args.patience, Path(args.logdir) / run_name) + [checkpoint]
    with training.Timer() as timer:
        try:
            model = training.build_model(size)
            history = training.train(model, train_data, validation_data, args.epochs, args.learning_rate, callbacks)
            if args.fine_tune_epochs:
                training.unfreeze_top(model)
                history = training.train(model, train_data, validation_data, args.fine_tune_epochs,
                                         args.learning_rate / 100, callbacks, history)
        except KeyboardInterrupt:
            kept = f"; best checkpoint so far kept at {checkpoint.path}" if checkpoint.saved else ""
            print(f"interrupted: no final model written{kept}", file=sys.stderr)
            return 130

    report, test_figures = training.score_on_test_split(model, test_data, test.labels)
    print(report)
    card = training.model_card(output, args.dataset, args.seed, size, counts, history, timer.seconds, test_figures)
    training.save_outputs(model, history, card, output)
    checkpoint.path.unlink(missing_ok=True)
    print(f"saved {output}, {output.with_suffix('.keras')}, {output.stem}.json, {output.stem}_training.png; "
          f"test accuracy {test_figures['accuracy']:.4f}; {card['epochs_trained']} epochs in {timer.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    run_cli(main)
