"""Command-line flags the scripts share, and the one place that turns them into the package's settings.

Only the scripts and this module know argparse: the package takes plain settings objects.
"""

import argparse

from mask_detector.classifier import PREPROCESSING
from mask_detector.faces import FACE_DETECTORS
from mask_detector.live import LiveSettings
from mask_detector.pipeline import PipelineSettings, fastest_model
from mask_detector.privacy import PRIVACY_MODES, hides_faces
from mask_detector.quiet import be_verbose


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the script's docstring as written and shows every default that is set."""

    def _get_help_string(self, action):
        text = action.help or ""
        # A switch that is off unless given (store_true) has no default worth showing; an on/off pair has.
        shown = all(action.default is not unset for unset in (None, False, argparse.SUPPRESS))  # 0 is shown
        if (shown or isinstance(action, argparse.BooleanOptionalAction)) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


class _Verbose(argparse.Action):
    """--verbose: the libraries' own messages are shown again, from the moment the flag is read."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        be_verbose()
        setattr(namespace, self.dest, True)


def new_parser(doc):
    """A script's parser: its docstring as the description, every default shown, and --verbose."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=_HelpFormatter)
    parser.add_argument(
        "--verbose", action=_Verbose, help="also show the libraries' own messages (OpenCV, TensorFlow, Qt)"
    )
    return parser


def at_least(minimum, kind=int):
    """An argparse type: a number of ``kind`` no smaller than ``minimum``."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


def add_pipeline_arguments(parser, preset, model=None):
    """The flags that choose and tune the face detector and the classifier, defaulting to ``preset``.

    ``preset`` is a pipeline.PipelineSettings (pipeline.PHOTOS, pipeline.LIVE);
    ``model`` the model shown as default (the shipped model's fastest copy unless given).
    """
    parser.add_argument(
        "-m", "--model", default=str(model or fastest_model()), help="classifier .h5, .keras or .tflite"
    )
    parser.add_argument(
        "-d", "--face-detector", "--detector", dest="face_detector", choices=FACE_DETECTORS,
        default=preset.face_detector, help="face detector",
    )
    parser.add_argument(
        "-c", "--confidence", type=float, default=preset.confidence,
        help="least face detection score (default: the face detector's own)",
    )
    parser.add_argument(
        "--detect-size", type=at_least(32), default=preset.detect_size,
        help="YuNet: longest side of the image it searches; smaller is faster, larger finds smaller faces",
    )
    parser.add_argument(
        "--single-scale", action=argparse.BooleanOptionalAction, default=preset.single_scale,
        help="YuNet: skip the second, enlarged pass that finds faces under 32 px (faster)",
    )
    parser.add_argument(
        "--preprocess", choices=PREPROCESSING, default=preset.preprocess,
        help="pixels the classifier expects: none = RGB 0-255 (this project's models scale inside); "
        "mobilenet_v2 = scaled to [-1, 1] first, as the classic recipe's preprocess_input; "
        "auto = none, but a model that shows no scaling of its own is refused",
    )


def pipeline_settings(args, doubtful_faces=False):
    """The PipelineSettings of the flags add_pipeline_arguments added."""
    return PipelineSettings(args.model, args.face_detector, args.confidence, args.detect_size, args.single_scale,
                            args.preprocess, doubtful_faces)


def add_live_arguments(parser):
    """The flags of one camera's live run beyond the pipeline's (live.LiveSettings, whose defaults they show)."""
    default = LiveSettings()
    parser.add_argument("--on-alert", metavar="COMMAND", help="run this shell command per alert, event JSON on stdin")
    parser.add_argument("--alert-timeout", type=at_least(0.1, float), default=default.alert_timeout,
                        help="seconds an --on-alert command may run before it is stopped; at the end, those still "
                        "running get 5 s more at most, then are all stopped together")
    parser.add_argument("--snapshots", metavar="DIR", help="save each alerted face here")
    parser.add_argument("--clips", metavar="DIR", help="save a video of the seconds around each alert here")
    parser.add_argument("--clip-before", type=at_least(0.0, float), default=default.clip_before,
                        help="seconds of video before an alert in its clip (kept in memory meanwhile)")
    parser.add_argument("--clip-after", type=at_least(0.0, float), default=default.clip_after,
                        help="seconds of video after an alert in its clip")
    parser.add_argument("--privacy", choices=PRIVACY_MODES, default=default.privacy,
                        help="off: pictures as they are; blur: every face pixelated in every picture written or "
                        "shown; stats: no picture written at all (refuses --output, --snapshots, --clips)")
    parser.add_argument("--evidence-faces", action="store_true",
                        help="with --privacy blur: leave the alerted person's face clear in their snapshot and clip")
    parser.add_argument("--keep-days", type=at_least(0.0, float),
                        help="delete snapshots and clips this script wrote once they are this many days old "
                        "(at start, then hourly); other files in those folders are never touched")
    parser.add_argument("--person-frames", type=at_least(1), default=default.person_frames,
                        help="frames a face must be found in to count as a person")
    parser.add_argument("--alert-cooldown", type=at_least(0.0, float), default=default.alert_cooldown,
                        help="a face found again within this many seconds near an alerted person who left "
                        "view is taken for that person: no second alert")
    parser.add_argument("--timeout", type=at_least(0.5, float), default=default.timeout,
                        help="seconds to wait for a source to open or to send its next frame")
    parser.add_argument("--reconnect-for", type=at_least(0.0, float), default=default.reconnect_for,
                        help="seconds to keep reopening a camera or stream that stopped sending")
    parser.add_argument("--max-fps", type=at_least(0.1, float),
                        help="process at most this many frames a second; the others are dropped, so a camera "
                        "never lags behind (default: every frame the machine keeps up with)")


def live_settings(args):
    """The LiveSettings of the flags of add_live_arguments and add_pipeline_arguments, and --source."""
    return LiveSettings(
        args.source, "", pipeline_settings(args, hides_faces(args.privacy)), args.person_frames, args.alert_cooldown, args.on_alert, args.alert_timeout,
        args.snapshots, args.clips, args.clip_before, args.clip_after, args.privacy, args.evidence_faces,
        args.keep_days, args.timeout, args.reconnect_for, args.max_fps,
    )
