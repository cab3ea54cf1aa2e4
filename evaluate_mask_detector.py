"""Measure the face detector and the classifier on photos annotated in PASCAL VOC format.

    python evaluate_mask_detector.py --voc path/to/facemask_voc_dev

Prints face recall by face size, mAP@0.5 over mask / no_mask, accuracy and
`no_mask` precision / recall / F1 on matched faces, and the classifier alone
on the true face boxes. --update-card writes the figures into the model card.
"""

import json
import shlex
import sys
from pathlib import Path

from mask_detector import DEFAULT_MODEL, plural
from mask_detector.cli import add_pipeline_arguments, new_parser, pipeline_settings
from mask_detector.errors import UserError, run_cli
from mask_detector.files import check_writable, write_json_atomically
from mask_detector.pipeline import PHOTOS


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--voc", required=True, help="folder with images/ and annotations/")
    add_pipeline_arguments(parser, PHOTOS, model=DEFAULT_MODEL)
    parser.add_argument("--json", help="also write the figures as JSON here")
    parser.add_argument("--update-card", action="store_true", help="store the figures in the model's JSON card")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mask_detector.evaluation import evaluate, format_table, load_voc
    from mask_detector.pipeline import load_pipeline

    # Outputs are checked before the work, which takes minutes.
    card_path = Path(args.model).with_suffix(".json")
    if args.update_card and not card_path.is_file():
        raise UserError(f"no model card {card_path} to update")
    if args.json:
        check_writable(args.json)
    annotations = load_voc(args.voc, report=lambda line: print(line, file=sys.stderr))
    pipeline = load_pipeline(pipeline_settings(args))
    figures = evaluate(pipeline, annotations, report=lambda line: print(line, file=sys.stderr))
    figures["detector"] = args.face_detector + (" single-scale" if args.single_scale else "")
    figures["model"] = Path(args.model).name
    print(f"{plural(len(annotations), 'photo')}, detector {args.face_detector}, model {figures['model']}")
    print(format_table(figures))
    if args.json:
        write_json_atomically(figures, args.json)
    if args.update_card:
        card = json.loads(card_path.read_text())
        given = sys.argv[1:] if argv is None else list(argv)
        card.setdefault("evaluations", {})[f"{Path(args.voc).name} ({figures['detector']})"] = {
            "command": shlex.join(["evaluate_mask_detector.py", *map(str, given)]),
            **{k: v for k, v in figures.items() if k != "model"},
        }
        write_json_atomically(card, card_path)
        print(f"updated {card_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
