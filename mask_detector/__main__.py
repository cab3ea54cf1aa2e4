"""`mask-detector COMMAND ...` and `python -m mask_detector COMMAND ...`: the scripts by task.

    mask-detector video --config site.toml     detect_mask_video.py
    mask-detector image --image photos/        detect_mask_image.py
    mask-detector train --dataset dataset/     train_mask_detector.py
    mask-detector evaluate --voc evaluation/   evaluate_mask_detector.py
    mask-detector export --kind float16        export_tflite.py
    mask-detector make-faces --faces DIR ...   make_masked_faces.py
    mask-detector fetch --mirror DIR           python -m mask_detector.assets
"""

import importlib
import sys

COMMANDS = {
    "video": "detect_mask_video", "image": "detect_mask_image", "train": "train_mask_detector",
    "evaluate": "evaluate_mask_detector", "export": "export_tflite", "make-faces": "make_masked_faces",
    "fetch": "mask_detector.assets",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        known = ", ".join(COMMANDS)
        print(__doc__.strip(), file=sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown command {argv[0]!r}; choose one of {known}", file=sys.stderr)
            sys.exit(2)
        sys.exit(0 if argv else 2)
    from mask_detector.errors import run_cli

    module = importlib.import_module(COMMANDS[argv[0]])
    # Each script's --help and messages name the command as the user typed it.
    sys.argv[0] = f"mask-detector {argv[0]}"
    run_cli(module.main, argv[1:])


if __name__ == "__main__":
    main()
