"""Find every face in photos and say whether it wears a mask.

    python detect_mask_image.py --image photo.jpg
    python detect_mask_image.py --image photos/ --no-display --output annotated/ --json results.jsonl

Each image gets one JSON line:
{"image": ..., "width": W, "height": H, "faces": [{"box": [x1, y1, x2, y2],
"detection_score": s, "label": "mask" | "no_mask", "mask_probability": p}]}
"""

import argparse
import json
import sys
from pathlib import Path

from mask_detector.errors import UserError, first_line, run_cli

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
WINDOW = "Face mask detector"


def parse_args(argv):
    from mask_detector.classifier import DEFAULT_MODEL
    from mask_detector.faces import DETECTORS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--image", nargs="+", required=True, help="image files and/or folders of images")
    parser.add_argument("-m", "--model", default=str(DEFAULT_MODEL), help="classifier .h5, .keras or .tflite")
    parser.add_argument("-d", "--detector", choices=DETECTORS, default="yunet", help="face detector (default: yunet)")
    parser.add_argument("-c", "--confidence", type=float, help="least face detection score (detector's default)")
    parser.add_argument(
        "--single-scale", action="store_true",
        help="YuNet: skip the second, enlarged pass that finds faces under 32 px (faster)",
    )
    parser.add_argument("-o", "--output", help="save annotated images: a file for one image, else a folder")
    parser.add_argument("--json", help="write JSON Lines here, one object per image ('-' for stdout)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--wait", type=int, default=0, help="ms to show each image; 0 waits for a key")
    return parser.parse_args(argv)


def list_images(inputs):
    """Expand folders into their image files; a missing path stops the run at once."""
    paths = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"{path} does not exist")
    return paths


def output_path_for(output, image_path, many):
    output = Path(output)
    if not many and output.suffix.lower() in IMAGE_SUFFIXES:
        return output
    return output / image_path.name


def main(argv=None):
    args = parse_args(argv)
    paths = list_images(args.image)
    if args.json is None and args.no_display and args.output is None:
        print("note: nothing is shown or saved; add --output or --json to keep results", file=sys.stderr)

    import cv2

    from mask_detector.pipeline import (
        MaskDetector, close_windows, display_available, draw_results, read_image, window_closed, write_image,
    )

    options = {"small_faces": not args.single_scale} if args.detector == "yunet" else {}
    detector = MaskDetector(args.model, args.detector, args.confidence, **options)
    show = not args.no_display and display_available()
    if not args.no_display and not show:
        print("note: no display found, running without a window", file=sys.stderr)
    json_out = None
    if args.json == "-":
        json_out = sys.stdout
    elif args.json:
        try:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            json_out = open(args.json, "w", encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write {args.json}: {error.strerror or error}") from None
    # With JSON on stdout, the per-image summaries go to stderr to keep stdout parseable.
    summary_out = sys.stderr if json_out is sys.stdout else sys.stdout

    failures = 0
    try:
        for done, path in enumerate(paths, 1):
            record = {"image": str(path)}
            stop = False
            try:
                image = read_image(path)
                results = detector(image)
            except (UserError, cv2.error, MemoryError) as error:
                # One bad image is reported in its own line; the others are still processed.
                if isinstance(error, UserError):
                    message = str(error)
                else:
                    message = f"cannot process {path}: {first_line(error)}"
                failures += 1
                record["error"] = message
                print(f"{path}: error: {message}", file=sys.stderr)
            else:
                height, width = image.shape[:2]
                record |= {"width": width, "height": height, "faces": [r.to_json() for r in results]}
                masked = sum(r.label == "mask" for r in results)
                print(
                    f"{path}: {len(results)} faces, {masked} mask, {len(results) - masked} no mask",
                    file=summary_out,
                )
                if args.output or show:
                    draw_results(image, results)
                if args.output:
                    write_image(output_path_for(args.output, path, len(paths) > 1), image)
                if show:
                    cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
                    scale = min(1.0, 1280 / max(width, height))
                    cv2.resizeWindow(WINDOW, int(width * scale), int(height * scale))
                    cv2.imshow(WINDOW, image)
                    key = cv2.waitKey(args.wait) & 0xFF
                    stop = key in (ord("q"), 27) or window_closed(WINDOW)
            if json_out:
                json_out.write(json.dumps(record) + "\n")
                json_out.flush()
            # Stop only once this image's line is written, so quitting loses no result.
            if stop:
                if done < len(paths):
                    print(f"stopped after {done} of {len(paths)} images", file=sys.stderr)
                break
    finally:
        if json_out not in (None, sys.stdout):
            json_out.close()
        if show:
            close_windows()
    if failures:
        print(f"{failures} of {len(paths)} images failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
