"""Find every face in photos and say whether it wears a mask.

    python detect_mask_image.py --image photo.jpg
    python detect_mask_image.py --image photos/ --no-display --output annotated/ --json results.jsonl

Each image gets one JSON line:
{"image": ..., "width": W, "height": H, "faces": [{"box": [x1, y1, x2, y2],
"detection_score": s, "label": "mask" | "no_mask", "mask_probability": p}]}

Outputs never replace an input photo. Annotated copies keep their file
names, or mirror the input folders when two photos share a name.
"""

import sys

from mask_detector.cli import add_pipeline_arguments, at_least, build_pipeline, new_parser
from mask_detector.errors import run_cli
from mask_detector.files import DEFAULT_MAX_PIXELS


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("-i", "--image", nargs="+", required=True, help="image files and/or folders of images")
    parser.add_argument("-r", "--recursive", action="store_true", help="also search the folders' sub-folders")
    add_pipeline_arguments(parser, detect_size=1280, single_scale=False)
    parser.add_argument("-o", "--output", help="save annotated images: a file for one image, else a folder")
    parser.add_argument("--json", help="write JSON Lines here, one object per image ('-' for stdout)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--wait", type=at_least(0), default=0, help="ms to show each image; 0 waits for a key")
    parser.add_argument(
        "--max-pixels", type=at_least(1), default=DEFAULT_MAX_PIXELS,
        help="refuse larger images (read from the file's header, before decoding)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mask_detector import display, photos
    from mask_detector.files import JsonLines

    found = photos.find_photos(args.image, args.recursive)
    copies = photos.plan_outputs(found, args.output, args.json)
    if args.json is None and args.no_display and args.output is None:
        print("note: nothing is shown or saved; add --output or --json to keep results", file=sys.stderr)
    show = display.window_wanted(args.no_display)
    pipeline = build_pipeline(args)
    with JsonLines(args.json) as json_lines:
        failures = photos.run_photos(pipeline, found, copies, json_lines, show, args.wait, args.max_pixels)
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
