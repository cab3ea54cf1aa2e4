"""Live face-mask detection from a webcam, a video file or a stream: people, not frames.

    python detect_mask_video.py                      # camera 0, in a window; q quits
    python detect_mask_video.py --source clip.mp4 --no-display --output annotated.mp4 --json frames.jsonl
    python detect_mask_video.py --events people.jsonl --on-alert "notify-send 'No mask'" --snapshots alerts/
    python detect_mask_video.py --source rtsp://door/stream --privacy blur --clips evidence/ --keep-days 7
    python detect_mask_video.py --config site.toml --metrics-port 9108 --stats stats.jsonl   # a service

Each face is followed while in view and gets one label per person, decided
over several frames. People without a mask raise one alert each. At the end
it prints one line: frames, seconds, frames per second, people seen and
their labels, alerts. --json appends one object per frame, then a summary;
--events one line per alert and per person leaving view. Neither is touched
when the run cannot start (a source that does not open, a missing model).

--privacy blur pixelates every face in the video, the window, snapshots and
clips; --privacy stats writes no picture at all. --clips keeps the seconds
before and after each alert; --keep-days deletes old snapshots and clips
(only those this script wrote).

--config site.toml runs one service for many cameras, each in a process of
its own, restarted when it stops, reporting to MQTT (with Home Assistant
discovery), Prometheus (--metrics-port) and --stats; docs/service.md shows the file.
"""

import sys

from mask_detector.cli import (add_live_arguments, add_pipeline_arguments, add_setting_flags, at_least, live_settings,
                               new_parser)
from mask_detector.errors import UserError, exit_status, run_cli, stop_on_sigterm
from mask_detector.files import is_still_image
from mask_detector.pipeline import LIVE
from mask_detector.privacy import check_keep_days, refuse_pictures
from mask_detector.service.config import SiteSettings

WINDOW = "Face mask detector (q quits)"


# With --config, the cameras' settings are in the site file: only these flags go with it.
SERVICE_FLAGS = {"config", "ray", "metrics_port", "stats", "web", "events", "verbose", "no_display"}


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--config", metavar="SITE.TOML",
                        help="run a service for the cameras of this site file (docs/service.md)")
    add_pipeline_arguments(parser, LIVE)
    parser.add_argument("-o", "--output", help="write the annotated video here (.mp4, .avi, .mkv, .mov)")
    parser.add_argument("--json", help="append one JSON object per frame, then a summary, to this file ('-' for "
                        "stdout); an existing file's lines are kept, and it is not touched if the run cannot start")
    parser.add_argument("--events", help="append a JSON line per alert and per person leaving view to this file "
                        "(kept and untouched like --json's)")
    add_live_arguments(parser)
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--max-frames", type=at_least(0), default=0, help="stop after this many frames (0: no limit)")
    parser.add_argument("--profile", action="store_true", help="at the end, say where a frame's time went, stage by "
                        "stage (decode, motion, detect, carry, track, align, classify, ...), in the summary line and "
                        "--json's summary")
    add_setting_flags(parser, SiteSettings(), names=("metrics_port", "stats", "web"))
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="with --config: one Ray actor per camera; 'local' starts Ray here, or a cluster address")
    args = parser.parse_args(argv)
    given = sorted(dest for dest, value in vars(args).items() if value != parser.get_default(dest))
    if args.config and set(given) - SERVICE_FLAGS:
        flag = "--" + sorted(set(given) - SERVICE_FLAGS)[0].replace("_", "-")
        parser.error(f"{flag} goes in the site file with --config (each camera's settings are there)")
    if not args.config and set(given) & {"ray", "metrics_port", "stats", "web"}:
        parser.error("--ray, --metrics-port, --stats and --web run with --config (a site file of cameras; one "
                     "[[camera]] for a single camera)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.config:
        return _service(args)
    refuse_pictures(args.privacy, output=args.output, snapshots=args.snapshots, clips=args.clips)
    check_keep_days(args.keep_days, snapshots=args.snapshots, clips=args.clips)
    settings = live_settings(args)
    stop_on_sigterm()
    from mask_detector.display import require_window
    from mask_detector.live import LiveOutputs, new_live_run
    from mask_detector.pipeline import load_pipeline
    from mask_detector.video import FrameSource

    if not args.no_display:
        require_window()
    outputs = LiveOutputs(args.source, args.output, args.json, args.events, args.snapshots, args.clips)
    # The source opens before the models load, so a wrong --source is told at once; the
    # outputs open last, so a run that cannot start leaves earlier files as they were.
    with FrameSource(settings.source, settings.timeout, settings.reconnect_for) as source:
        pipeline = load_pipeline(settings.pipeline)
        with outputs.open():
            run = new_live_run(settings, pipeline, outputs.events, source.fps)
            writer = outputs.video_writer(source.fps)
            counts = run.run(source, outputs.json_lines, writer, None if args.no_display else WINDOW, args.max_frames,
                             profile=args.profile)
    said = sys.stderr if outputs.json_to_stdout else sys.stdout
    print(counts.summary_line() + (f", written {args.output}" if args.output and counts.frames else "")
          + (f" ({counts.stopped_by})" if counts.stopped_by else ""), file=said)
    if args.profile:
        print(counts.profile_line(), file=said)
    if outputs.video_writer_codec == "mp4v":
        print(f"note: {args.output} is MPEG-4 Part 2 video (mp4v), which most web browsers do not play: PyAV or its "
              f"H.264 encoder is missing (pip install -r requirements.txt); convert it (ffmpeg -i IN -c:v libx264 "
              f"OUT) or write .avi", file=sys.stderr)
    if source.warning:
        print(f"warning: {source.warning}", file=sys.stderr)
    if source.kind == "file" and is_still_image(args.source):
        # A person counts after --person-frames frames, so a still image never shows one.
        print(f"note: {source.name} is a still image, not a video: people are counted over "
              f"{args.person_frames} frames or more; for photos use detect_mask_image.py --image {source.name}",
              file=sys.stderr)
    if counts.interruption:
        return exit_status(counts.interruption)
    if source.error:
        raise UserError(source.error)
    if counts.frames == 0:
        raise UserError(f"{source.name} gave no frames")
    return 0


def _service(args):
    from dataclasses import replace

    from mask_detector.files import check_writable
    from mask_detector.service.config import check_web, load_site
    from mask_detector.service.supervisor import run_service

    site = load_site(args.config)
    site = check_web(replace(site, events=args.events or site.events, stats=args.stats or site.stats,
                             metrics_port=args.metrics_port or site.metrics_port, web=args.web or site.web))
    for path in (site.events, site.stats):
        if path:
            check_writable(path)
    stop_on_sigterm()
    return run_service(site, args.ray)


if __name__ == "__main__":
    run_cli(main)
