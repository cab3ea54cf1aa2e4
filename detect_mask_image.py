"""Find every face in photos and say whether it wears a mask.

    python detect_mask_image.py --image photo.jpg
    python detect_mask_image.py --image photos/ --no-display --output annotated/ --json results.jsonl

Each image gets one JSON line:
{"image": ..., "size": bytes, "mtime": t, "width": W, "height": H, "faces": [{"box": [x1, y1, x2, y2],
"detection_score": s, "label": "mask" | "no_mask" | "incorrect", "mask_probability": p,
"probabilities": {"mask": p, "no_mask": q, "incorrect": r}}], "settings": {"model": name, "model_sha256": h,
"face_detector": d, "confidence": c, "detect_size": n, "single_scale": b, "preprocess": p}}

Outputs never replace an input photo. Annotated copies keep their file
names, or mirror the input folders when two photos share a name.

A folder runs in as many processes as the machine has cores (--workers), or
on a Ray cluster (--ray). Run the same command again after a stop and the
photos already in --json are skipped; those made with other settings (model,
its sha256, detector, confidence, detect size, single scale, privacy) are done again.

--privacy blur pixelates every face in the copies and the window;
--privacy stats writes no picture at all, only the JSON lines and counts.
"""

import os
import sys

from mask_detector.cli import add_pipeline_arguments, at_least, new_parser, pipeline_settings
from mask_detector.errors import run_cli, stop_on_sigterm
from mask_detector.files import DEFAULT_MAX_PIXELS
from mask_detector.pipeline import PHOTOS
from mask_detector.privacy import PRIVACY_MODES, hides_faces, refuse_pictures


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("-i", "--image", nargs="+", required=True, help="image files and/or folders of images")
    parser.add_argument("-r", "--recursive", action="store_true", help="also search the folders' sub-folders")
    add_pipeline_arguments(parser, PHOTOS)
    parser.add_argument("-o", "--output", help="save annotated images: a file for one image, else a folder")
    parser.add_argument("--json", help="write JSON Lines here, one object per image ('-' for stdout)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--wait", type=at_least(0), default=0, help="ms to show each image; 0 waits for a key")
    parser.add_argument(
        "--max-pixels", type=at_least(1), default=DEFAULT_MAX_PIXELS,
        help="refuse larger images (read from the file's header, before decoding)",
    )
    parser.add_argument(
        "-w", "--workers", type=at_least(1),
        help=f"processes (or Ray actors) each running the pipeline; a window means one "
        f"(default: the machine's cores, {os.cpu_count()}, or the Ray cluster's)",
    )
    parser.add_argument(
        "--ray", metavar="ADDRESS",
        help="run on Ray: 'local' starts it on this machine, 'auto' joins the running cluster, or its address",
    )
    parser.add_argument(
        "--timeout", type=at_least(0.1, float), default=10.0,
        help="with --ray ADDRESS: seconds to wait for the cluster to answer before giving up",
    )
    parser.add_argument("--restart", action="store_true", help="do every photo again, even those already in --json")
    parser.add_argument("--privacy", choices=PRIVACY_MODES, default="off",
                        help="off: pictures as they are; blur: every face pixelated in the copies written and the "
                        "window; stats: no picture written at all (refuses --output), only JSON and counts")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    refuse_pictures(args.privacy, output=args.output)
    from mask_detector import display, parallel, photos, ray_cluster
    from mask_detector.files import JsonLines

    if args.ray:
        ray_cluster.require_ray(args.ray, args.timeout)
    stop_on_sigterm()
    found = photos.find_photos(args.image, args.recursive)
    copies = photos.plan_outputs(found, args.output, args.json)
    if args.json is None and args.no_display and args.output is None:
        print("note: nothing is shown or saved; add --output or --json to keep results", file=sys.stderr)
    show = display.window_wanted(args.no_display or bool(args.ray))  # Ray sends no images back
    settings = pipeline_settings(args, doubtful_faces=hides_faces(args.privacy))
    made_with = photos.settings_record(settings)
    if args.privacy != "off":  # a resumed run redoes copies made with faces clear; lines of "off" stay as they were
        made_with |= {"privacy": args.privacy}
    earlier, todo = photos.resume(args.json, found, made_with) if not args.restart else ("", found)
    hide_faces = hides_faces(args.privacy)
    jobs = [photos.PhotoJob(path, copies.get(path), args.max_pixels, hide_faces) for path, _ in todo]
    with JsonLines(args.json, earlier=earlier) as json_lines:
        detections = parallel.detections(settings, jobs, show, args.workers, args.ray, args.verbose)
        failures = photos.run_photos(detections, len(todo), json_lines, show, args.wait, args.verbose, made_with)
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
