"""Find every face in photos and say whether it wears a mask.

    python detect_mask_image.py --image photo.jpg
    python detect_mask_image.py --image photos/ --no-display --output annotated/ --json results.jsonl

Each image gets one JSON line:
{"image": ..., "width": W, "height": H, "faces": [{"box": [x1, y1, x2, y2],
"detection_score": s, "label": "mask" | "no_mask", "mask_probability": p}]}
"""

import sys

from mask_detector.cli import add_pipeline_arguments, build_pipeline, new_parser
from mask_detector.errors import run_cli

WINDOW = "Face mask detector"


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("-i", "--image", nargs="+", required=True, help="image files and/or folders of images")
    add_pipeline_arguments(parser, detect_size=1280, single_scale=False)
    parser.add_argument("-o", "--output", help="save annotated images: a file for one image, else a folder")
    parser.add_argument("--json", help="write JSON Lines here, one object per image ('-' for stdout)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--wait", type=int, default=0, help="ms to show each image; 0 waits for a key")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mask_detector import display, photos
    from mask_detector.files import JsonLines, write_image

    paths = photos.list_images(args.image)
    if args.json is None and args.no_display and args.output is None:
        print("note: nothing is shown or saved; add --output or --json to keep results", file=sys.stderr)
    pipeline = build_pipeline(args)
    show = display.window_wanted(args.no_display)
    failures = 0
    with JsonLines(args.json) as json_lines:
        # With JSON on stdout, the per-image summaries go to stderr to keep stdout parseable.
        summary_out = sys.stderr if json_lines.to_stdout else sys.stdout
        try:
            for done, path in enumerate(paths, 1):
                record, image, results = photos.detect_in_photo(pipeline, path)
                failures += "error" in record
                print(photos.summary_line(record), file=sys.stderr if "error" in record else summary_out)
                stop = False
                if image is not None and (args.output or show):
                    display.draw_results(image, results)
                    if args.output:
                        write_image(photos.output_path_for(args.output, path, len(paths) > 1), image)
                    stop = show and display.show_image(WINDOW, image, args.wait)
                # Stop only once this image's line is written, so quitting loses no result.
                json_lines.write(record)
                if stop:
                    if done < len(paths):
                        print(f"stopped after {done} of {len(paths)} images", file=sys.stderr)
                    break
        finally:
            if show:
                display.close_windows()
    if failures:
        print(f"{failures} of {len(paths)} images failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
