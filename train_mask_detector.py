"""Fine-tune an ImageNet MobileNetV2 to tell masked faces from unmasked ones.

    python train_mask_detector.py --dataset dataset
    python train_mask_detector.py --dataset dataset/observations --dataset dataset/chandrikadeb7

Writes the model as .h5 and .keras, a JSON model card, a plot of the curves
and TensorBoard logs (`tensorboard --logdir logs`).
"""

import argparse
import datetime
import sys
from pathlib import Path

from mask_detector.errors import run_cli


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", help="dataset folder; repeat to merge (default: dataset)")
    parser.add_argument("--output", default="models/mask_detector.h5", help="model path, .h5 (default: %(default)s)")
    # The new head settles within a few epochs; unfreezing the backbone's top blocks
    # afterwards is what lifts accuracy on real street photos.
    parser.add_argument("--epochs", type=int, default=5, help="most epochs with the backbone frozen")
    parser.add_argument("--fine-tune-epochs", type=int, default=3, help="then this many with its top unfrozen")
    parser.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=128, help="side of the square face crop")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-per-class", type=int, default=0, help="use at most N images per class (0: all)")
    parser.add_argument("--logdir", default="logs", help="TensorBoard folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="makes the split and the training repeatable")
    args = parser.parse_args(argv)
    args.dataset = args.dataset or ["dataset"]
    if Path(args.output).suffix != ".h5":
        parser.error("--output must end in .h5 (a .keras copy is written beside it)")
    for name in ("epochs", "batch_size", "image_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.image_size < 32:
        parser.error("--image-size must be at least 32")
    return args


def limit_per_class(images, most, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    keep = []
    for label in sorted(set(images.labels)):
        members = [i for i, value in enumerate(images.labels) if value == label]
        keep += sorted(rng.permutation(members)[:most].tolist())
    return images.subset(keep)


def main(argv=None):
    args = parse_args(argv)
    output = Path(args.output)

    from mask_detector import training
    from mask_detector.data import find_images, make_dataset, split_without_leaks

    training.check_writable(output)
    import keras
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score, classification_report

    from mask_detector import CLASS_NAMES

    keras.utils.set_random_seed(args.seed)
    images = find_images(args.dataset)
    skipped = len(images.skipped)
    if args.max_per_class:
        images = limit_per_class(images, args.max_per_class, args.seed)
    train, validation, test, split_stats = split_without_leaks(images, seed=args.seed)
    print(
        f"images: {split_stats['images']} usable ({images.counts()}), {skipped} skipped, "
        f"{split_stats['duplicates_dropped']} duplicate copies dropped; "
        f"split train {len(train.paths)} / validation {len(validation.paths)} / test {len(test.paths)}"
    )

    size = args.image_size
    train_data = make_dataset(train, size, args.batch_size, training=True, seed=args.seed)
    validation_data = make_dataset(validation, size, args.batch_size)
    test_data = make_dataset(test, size, args.batch_size)

    model = training.build_model(size)
    checkpoint_path = output.with_name(f"{output.stem}.checkpoint.keras")
    run_name = f"{output.stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    checkpoint = training.BestCheckpoint(checkpoint_path)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=str(Path(args.logdir) / run_name)),
        checkpoint,
    ]
    verbose = 1 if sys.stdout.isatty() else 2
    history = {}

    def fit(epochs, learning_rate):
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        start = len(history.get("loss", []))
        result = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=start + epochs,
            initial_epoch=start,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the tf.data pipeline shuffles
        )
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)

    with training.Timer() as timer:
        try:
            fit(args.epochs, args.learning_rate)
            if args.fine_tune_epochs:
                training.unfreeze_top(model)
                fit(args.fine_tune_epochs, args.learning_rate / 100)
        except KeyboardInterrupt:
            kept = f"; best checkpoint so far kept at {checkpoint_path}" if checkpoint.saved else ""
            print(f"interrupted: no final model written{kept}", file=sys.stderr)
            return 130

    probabilities = np.concatenate([model(batch, training=False).numpy() for batch, _ in test_data])
    predicted = probabilities.argmax(axis=1)
    truth = np.array(test.labels)
    print(classification_report(truth, predicted, target_names=list(CLASS_NAMES), digits=4))
    report = classification_report(truth, predicted, target_names=list(CLASS_NAMES), output_dict=True)

    output.parent.mkdir(parents=True, exist_ok=True)
    keras_path = output.with_suffix(".keras")
    plot_path = output.with_name(f"{output.stem}_training.png")
    card_path = output.with_suffix(".json")
    training.save_atomically(model, output)
    training.save_atomically(model, keras_path)
    training.plot_history(history, plot_path)
    card = {
        "model": output.name,
        "model_keras": keras_path.name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": training.command_line(),
        "datasets": [str(d) for d in args.dataset],
        "seed": args.seed,
        "input": {"size": [size, size, 3], "color": "RGB", "pixel_range": [0, 255]},
        "class_names": list(CLASS_NAMES),
        "output": "softmax over class_names",
        "images": {
            "usable": split_stats["images"],
            "skipped_unreadable": skipped,
            "duplicate_copies_dropped": split_stats["duplicates_dropped"],
            "train": len(train.paths),
            "validation": len(validation.paths),
            "test": len(test.paths),
        },
        "epochs_trained": len(history.get("loss", [])),
        "training_seconds": round(timer.seconds, 1),
        "test_split": {
            "accuracy": round(report["accuracy"], 4),
            "balanced_accuracy": round(balanced_accuracy_score(truth, predicted), 4),
            **{
                name: {k: round(v, 4) for k, v in report[name].items() if k != "support"}
                | {"support": int(report[name]["support"])}
                for name in CLASS_NAMES
            },
        },
        "versions": training.environment_versions(),
    }
    training.write_json_atomically(card, card_path)
    checkpoint_path.unlink(missing_ok=True)
    print(
        f"saved {output}, {keras_path}, {card_path.name}, {plot_path.name}; "
        f"test accuracy {report['accuracy']:.4f}; {card['epochs_trained']} epochs in {timer.seconds:.0f} s"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
