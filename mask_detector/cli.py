"""Command-line flags the scripts share, and the one place that turns them into the package's settings.

Only the scripts and this module know argparse: the package takes plain settings objects.
"""

import argparse
import math

from dataclasses import replace

from mask_detector.live import LiveSettings
from mask_detector.pipeline import PipelineSettings, fastest_model
from mask_detector.quiet import be_verbose
from mask_detector.settings import settings_of


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


def at_least(minimum, kind=int, most=None):
    """An argparse type: a number of ``kind`` no smaller than ``minimum`` (nor greater than ``most``, if given)."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):  # float() reads nan and inf
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {text}")
        return value

    return parse


def add_setting_flags(parser, settings, names=None):
    """The flags of the settings that ``settings``' dataclass declares (settings.setting), in their order.

    ``settings`` is an instance whose values are the flags' defaults (a preset); ``names``, if given, the
    settings to add (the others stay as declared).
    """
    for declared in settings_of(type(settings)):
        if not declared.flag or names is not None and declared.name not in names:
            continue
        options = [option for option in (declared.short, declared.option, *declared.aliases) if option]
        default = getattr(settings, declared.name)
        if declared.kind is bool:
            action = argparse.BooleanOptionalAction if declared.negatable else "store_true"
            parser.add_argument(*options, dest=declared.name, action=action, default=default, help=declared.help)
            continue
        if hasattr(declared.kind, "parse"):  # a kind of its own (zones.Zones): one item per flag, given again
            parser.add_argument(*options, dest=declared.name, type=_argument_type(declared.kind.parse),
                                action="append", default=None, metavar=declared.metavar,
                                help=f"{declared.help} (default: {default})")
            continue
        if declared.kind is str:
            kind = str
        else:
            # The declaration's limits, as the site file checks them: a port of 70000 is refused here too.
            kind = at_least(-math.inf if declared.least is None else declared.least, declared.kind, declared.most)
        parser.add_argument(*options, dest=declared.name, type=kind, choices=declared.choices, default=default,
                            metavar=declared.metavar, help=declared.help)


def _argument_type(parse):
    """An argparse type of a parse function that says what is wrong with a ValueError."""

    def parsed(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parsed


def settings_from(cls, args, **given):
    """A ``cls`` of the flags add_setting_flags added (by name), and of ``given``."""
    values = {}
    for declared in settings_of(cls):
        if declared.flag:
            value = getattr(args, declared.name)
            if hasattr(declared.kind, "parse"):  # the items of a flag given again and again, or the default
                value = declared.default if value is None else declared.kind(value)
            values[declared.name] = value
    return cls(**values | given)


def add_pipeline_arguments(parser, preset, model=None):
    """The flags that choose and tune the face detector and the classifier, defaulting to ``preset``.

    ``preset`` is a pipeline.PipelineSettings (pipeline.PHOTOS, pipeline.LIVE);
    ``model`` the model shown as default (the shipped model's fastest copy unless given).
    """
    add_setting_flags(parser, replace(preset, model=str(model or fastest_model())))


def pipeline_settings(args, doubtful_faces=False):
    """The PipelineSettings of the flags add_pipeline_arguments added."""
    return settings_from(PipelineSettings, args, doubtful_faces=doubtful_faces)


def add_live_arguments(parser):
    """The flags of one camera's live run (live.LiveSettings) but the pipeline's: add_pipeline_arguments adds them."""
    add_setting_flags(parser, LiveSettings())


def live_settings(args):
    """The LiveSettings of the flags of add_live_arguments and add_pipeline_arguments."""
    # A live run always finds the doubtful faces: they hold tracks through a moment of low score (tracking.py),
    # and are pixelated with the others when privacy hides faces.
    return settings_from(LiveSettings, args, pipeline=pipeline_settings(args, doubtful_faces=True))
