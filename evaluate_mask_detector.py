"""Measure the detector and the classifier on photos annotated in PASCAL VOC format.

    python evaluate_mask_detector.py --voc path/to/facemask_voc_dev

Prints face recall by face size, mAP@0.5 over mask / no_mask, accuracy and
`no_mask` precision / recall / F1 on matched faces, and the classifier alone
on the true face boxes. --update-card writes the figures into the model card.
"""

import argparse
import json
import sys
from pathlib import Path

from mask_detector.errors import UserError, run_cli


def parse_args(argv):
    from mask_detector.classifier import DEFAULT_MODEL
    from mask_detector.faces import DETECTORS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", required=True, help="folder with images/ and annotations/")
    parser.add_argument("-m", "--model", default=str(DEFAULT_MODEL), help="classifier .h5, .keras or .tflite")
    parser.add_argument("-d", "--detector", choices=DETECTORS, default="yunet")
    parser.add_argument("-c", "--confidence", type=float, help="least face detection score (detector's default)")
    parser.add_argument(
        "--single-scale", action="store_true",
        help="YuNet: skip the second, enlarged pass that finds faces under 32 px (faster)",
    )
    parser.add_argument("--json", help="also write the figures as JSON here")
    parser.add_argument("--update-card", action="store_true", help="store the figures in the model's JSON card")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mask_detector.classifier import crop_faces
    from mask_detector.evaluation import Tally, format_table, load_voc, summary, tally_image
    from mask_detector.pipeline import MaskDetector, read_image

    annotations = load_voc(args.voc)
    options = {"small_faces": not args.single_scale} if args.detector == "yunet" else {}
    pipeline = MaskDetector(args.model, args.detector, args.confidence, **options)
    tally = Tally()
    for number, annotation in enumerate(annotations, 1):
        image = read_image(annotation.image)
        results = pipeline(image)
        crops = crop_faces(image, annotation.boxes.astype(int), pipeline.classifier.input_size)
        tally_image(tally, annotation, results, pipeline.classifier.predict(crops))
        if number % 50 == 0:
            print(f"{number}/{len(annotations)} photos", file=sys.stderr)
    figures = summary(tally)
    figures["photos"] = len(annotations)
    figures["detector"] = args.detector + (" single-scale" if args.single_scale else "")
    figures["model"] = Path(args.model).name
    print(f"{len(annotations)} photos, detector {args.detector}, model {Path(args.model).name}")
    print(format_table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if args.update_card:
        from mask_detector.training import write_json_atomically

        card_path = Path(args.model).with_suffix(".json")
        if not card_path.is_file():
            raise UserError(f"no model card {card_path} to update")
        card = json.loads(card_path.read_text())
        card.setdefault("evaluations", {})[f"{Path(args.voc).name} ({figures['detector']})"] = {
            k: v for k, v in figures.items() if k not in ("model",)
        }
        write_json_atomically(card, card_path)
        print(f"updated {card_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
