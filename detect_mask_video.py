"""Live face-mask detection from a webcam, a video file or a stream.

    python detect_mask_video.py                      # camera 0, in a window; q quits
    python detect_mask_video.py --source clip.mp4 --no-display --output annotated.mp4
    python detect_mask_video.py --model models/mask_detector_float16.tflite   # fastest on a CPU

Prints one summary line at the end: frames, seconds, frames per second,
faces seen and how many of them without a mask.
"""

import argparse
import sys
import time

from mask_detector.errors import UserError, run_cli

WINDOW = "Face mask detector (q quits)"


def parse_args(argv):
    from mask_detector.classifier import DEFAULT_MODEL
    from mask_detector.faces import DETECTORS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-s", "--source", default="0", help="camera index, video file or stream URL (default: 0)")
    parser.add_argument("-m", "--model", default=str(DEFAULT_MODEL), help="classifier .h5, .keras or .tflite")
    parser.add_argument("-d", "--detector", choices=DETECTORS, default="yunet", help="face detector (default: yunet)")
    parser.add_argument("-c", "--confidence", type=float, help="least face detection score (detector's default)")
    # 480 halves YuNet's time on a 640x480 webcam frame, at the price of its smallest faces
    # (benchmarks/bench_pipeline.py measures both).
    parser.add_argument(
        "--detect-size", type=int, default=480,
        help="longest side of the frame the YuNet detector sees; smaller is faster (default: %(default)s)",
    )
    parser.add_argument("-o", "--output", help="write the annotated video here (.mp4, .avi, .mkv, .mov)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    args = parser.parse_args(argv)
    if args.detect_size < 32:
        parser.error("--detect-size must be at least 32")
    return args


def main(argv=None):
    args = parse_args(argv)

    import cv2

    from mask_detector.pipeline import (
        MaskDetector, close_windows, display_available, draw_results, draw_status, window_closed,
    )
    from mask_detector.video import FrameSource, VideoOutput

    show = not args.no_display
    if show and not display_available():
        raise UserError("no display found; run with --no-display (and --output to keep the video)")

    frames = faces_seen = no_mask_seen = 0
    writer = None
    stopped_by = ""
    # The source opens before the model loads (seconds), so a wrong --source is told at once.
    with FrameSource(args.source) as source:
        options = {"max_side": args.detect_size} if args.detector == "yunet" else {}
        detector = MaskDetector(args.model, args.detector, args.confidence, **options)
        if args.output:
            writer = VideoOutput(args.output, source.fps)
        start = last = time.perf_counter()
        smoothed_fps = 0.0
        try:
            for frame in source:
                results = detector(frame)
                frames += 1
                faces_seen += len(results)
                no_mask_seen += sum(r.label == "no_mask" for r in results)
                now = time.perf_counter()
                # An exponential average keeps the on-screen rate readable.
                instant = 1.0 / max(now - last, 1e-6)
                smoothed_fps = instant if frames == 1 else 0.9 * smoothed_fps + 0.1 * instant
                last = now
                if writer or show:
                    draw_results(frame, results)
                    draw_status(frame, f"{smoothed_fps:.1f} FPS  faces {len(results)}")
                if writer:
                    writer.write(frame)
                if show:
                    cv2.imshow(WINDOW, frame)
                    key = cv2.waitKey(1) & 0xFF
                    if key in (ord("q"), 27):
                        stopped_by = "q pressed"
                        break
                    if window_closed(WINDOW):
                        stopped_by = "window closed"
                        break
                if args.max_frames and frames >= args.max_frames:
                    break
        except KeyboardInterrupt:
            stopped_by = "interrupted"
        finally:
            if writer:
                writer.close()
            if show:
                close_windows()
        seconds = time.perf_counter() - start
        problem = source.error
    rate = frames / seconds if seconds > 0 else 0.0
    print(
        f"frames {frames}, seconds {seconds:.2f}, fps {rate:.1f}, faces {faces_seen}, no_mask {no_mask_seen}"
        + (f", written {args.output}" if writer else "")
        + (f" ({stopped_by})" if stopped_by else "")
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if frames == 0:
        print(f"error: {args.source} gave no frames", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
