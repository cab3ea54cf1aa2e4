"""Live face-mask detection from a webcam, a video file or a stream.

    python detect_mask_video.py                      # camera 0, in a window; q quits
    python detect_mask_video.py --source clip.mp4 --no-display --output annotated.mp4
    python detect_mask_video.py --model models/mask_detector_float16.tflite   # fastest on a CPU

Prints one summary line at the end: frames, seconds, frames per second,
faces seen and how many of them without a mask.
"""

import sys

from mask_detector.cli import add_pipeline_arguments, at_least, build_pipeline, new_parser
from mask_detector.errors import UserError, run_cli

WINDOW = "Face mask detector (q quits)"


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("-s", "--source", default="0", help="camera index, video file or stream URL")
    # A 480 px copy halves YuNet's time on a 640x480 webcam frame, at the price of its smallest
    # faces, and one pass is enough for faces near a camera (benchmarks/bench_pipeline.py measures).
    add_pipeline_arguments(parser, detect_size=480, single_scale=True)
    parser.add_argument("-o", "--output", help="write the annotated video here (.mp4, .avi, .mkv, .mov)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--max-frames", type=at_least(0), default=0, help="stop after this many frames (0: no limit)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mask_detector.display import display_available
    from mask_detector.live import run_live
    from mask_detector.video import FrameSource, VideoOutput

    if not args.no_display and not display_available():
        raise UserError("no display found; run with --no-display (and --output to keep the video)")
    # The source opens before the model loads (seconds), so a wrong --source is told at once.
    with FrameSource(args.source) as source:
        pipeline = build_pipeline(args)
        writer = VideoOutput(args.output, source.fps) if args.output else None
        counts = run_live(pipeline, source, writer, None if args.no_display else WINDOW, args.max_frames)
        problem = source.error
    print(
        counts.summary_line()
        + (f", written {args.output}" if writer else "")
        + (f" ({counts.stopped_by})" if counts.stopped_by else "")
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if counts.frames == 0:
        print(f"error: {args.source} gave no frames", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
