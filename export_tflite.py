"""Export the mask classifier to LiteRT / TensorFlow Lite for small devices.

    python export_tflite.py                      # float16 and int8 beside models/mask_detector.h5
    python export_tflite.py --kind int8 --dataset dataset --output models/mask_int8.tflite

The .tflite files take the same input (RGB faces, 0-255, float32) and give
the same output as the Keras model, so the detection scripts accept them as
--model. int8 is calibrated on training images from --dataset.
"""

import sys
from pathlib import Path

from mask_detector import DEFAULT_DATASET, DEFAULT_MODEL
from mask_detector.classifier import TRAIN_HINT
from mask_detector.cli import at_least, new_parser
from mask_detector.errors import UserError, run_cli
from mask_detector.export import KINDS, calibration_images, carry_card, convert
from mask_detector.files import check_writable, write_bytes_atomically


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("-m", "--model", default=str(DEFAULT_MODEL), help="Keras model (.h5 or .keras)")
    parser.add_argument("--kind", choices=KINDS + ("all",), default="all", help="what to export")
    parser.add_argument("--dataset", action="append",
                        help=f"images to calibrate int8 on; repeat to merge (default: {DEFAULT_DATASET})")
    parser.add_argument("--calibration-images", type=at_least(1), default=200, help="how many")
    parser.add_argument(
        "-o", "--output", help="output .tflite, for one --kind (default: <model>_<kind>.tflite beside the model)"
    )
    args = parser.parse_args(argv)
    args.dataset = args.dataset or [str(DEFAULT_DATASET)]
    if args.output and args.kind == "all":
        parser.error("--output needs a single --kind")
    if args.output and Path(args.output).suffix.lower() != ".tflite":
        parser.error("--output must end in .tflite")
    return args


def main(argv=None):
    args = parse_args(argv)
    model = Path(args.model)
    if model.suffix.lower() not in (".h5", ".keras"):
        raise UserError(f"--model must be a Keras .h5 or .keras file, got {model.name}")
    if not model.is_file():
        raise UserError(f"model file {model} not found; {TRAIN_HINT}")
    kinds = KINDS if args.kind == "all" else (args.kind,)
    outputs = {kind: Path(args.output) if args.output else model.with_name(f"{model.stem}_{kind}.tflite")
               for kind in kinds}
    # Every input and output is checked before the first conversion, which takes half a minute.
    for output in outputs.values():
        check_writable(output)
    calibration = calibration_images(args.dataset) if "int8" in kinds else None
    for kind, output in outputs.items():
        data = convert(model, kind, calibration, args.calibration_images)
        write_bytes_atomically(data, output)
        print(f"wrote {output.resolve()} ({len(data) / 1e6:.1f} MB, {kind})")
        card = carry_card(model, output)
        if card:
            print(card, file=sys.stderr if card.startswith("warning") else sys.stdout)
    return 0


if __name__ == "__main__":
    run_cli(main)
