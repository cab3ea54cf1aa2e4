"""mask_detector/cli.py, seen through the five scripts: numbers below their least refused, every default in --help."""

import re

import pytest

from support.scripts import run_all

SCRIPTS = ("detect_mask_image.py", "detect_mask_video.py", "train_mask_detector.py", "evaluate_mask_detector.py",
           "export_tflite.py")
# The options that have no default to show: switches, required inputs, optional outputs.
WITHOUT_DEFAULT = {
    "all": {"--help", "--verbose"},
    "detect_mask_image.py": {"--image", "--recursive", "--output", "--json", "--no-display", "--ray", "--restart"},
    "detect_mask_video.py": {"--output", "--json", "--events", "--on-alert", "--snapshots", "--clips", "--evidence-faces",
                             "--keep-days", "--no-display", "--config", "--metrics-port", "--stats", "--web", "--ray",
                             "--profile"},
    "train_mask_detector.py": {"--no-face-cache"},
    "evaluate_mask_detector.py": {"--voc", "--json", "--update-card"},
    "export_tflite.py": set(),
}
# Once: negative counts were taken (`--max-frames -5` ran one frame and exited 0).
TOO_SMALL = [
    ("train_mask_detector.py", "--max-per-class", "-3", 0),
    ("train_mask_detector.py", "--fine-tune-epochs", "-2", 0),
    ("detect_mask_video.py", "--max-frames", "-5", 0),
    ("detect_mask_image.py", "--max-pixels", "0", 1),
    ("export_tflite.py", "--calibration-images", "0", 1),
]


@pytest.fixture(scope="module")
def runs():
    wanted = {f"help {script}": (script, "--help") for script in SCRIPTS}
    wanted |= {f"{script} {flag} {value}": (script, flag, value) for script, flag, value, _ in TOO_SMALL}
    return run_all(wanted)


def help_entries(text):
    """{long option: its help text} from an argparse --help page."""
    entries, current = {}, None
    for line in text.split("\noptions:\n", 1)[1].splitlines():
        if re.match(r"  -", line):
            current = re.findall(r"(--[\w-]+)", line.split("  ", 2)[1])[0]
            entries[current] = line
        elif current:
            entries[current] += " " + line.strip()
    return {option: re.sub(r"\s+", " ", text) for option, text in entries.items()}


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_every_default(runs, script):
    result = runs[f"help {script}"]
    assert result.returncode == 0, result.stderr
    entries = help_entries(result.stdout)
    missing = {option for option, text in entries.items() if "(default: " not in text}
    assert missing == WITHOUT_DEFAULT["all"] | WITHOUT_DEFAULT[script], entries


@pytest.mark.parametrize("script, flag, value, least", TOO_SMALL)
def test_numbers_below_their_least_are_refused(runs, script, flag, value, least):
    result = runs[f"{script} {flag} {value}"]
    assert result.returncode == 2, result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"{script}: error: argument {flag}: must be at least {least}, got {value}"


def test_each_flag_lands_on_its_own_setting():
    """Flags and settings are matched by name: two settings of the same kind cannot trade values."""
    from mask_detector.cli import add_live_arguments, add_pipeline_arguments, live_settings, new_parser
    from mask_detector.live import LiveSettings
    from mask_detector.pipeline import LIVE
    from mask_detector.settings import settings_of
    from mask_detector.zones import Zone, Zones

    parser = new_parser("test")
    add_pipeline_arguments(parser, LIVE)
    add_live_arguments(parser)
    given = {"source": "clip.mp4", "on_alert": "true", "alert_timeout": 7.5, "snapshots": "shots", "clips": "clips",
             "clip_before": 2.5, "clip_after": 8.0, "privacy": "blur", "evidence_faces": True, "keep_days": 3.0,
             "person_frames": 4, "person_seconds": 0.8, "alert_cooldown": 1.5, "timeout": 2.0, "reconnect_for": 6.0, "max_fps": 12.0,
             "motion": False, "idle_seconds": 0.5, "detect_every": 5,
             "model": "m.h5", "face_detector": "ssd", "confidence": 0.6, "detect_size": 320, "single_scale": False,
             "preprocess": "none", "zones": Zones([Zone("tv", "ignore", ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5)))])}
    argv = []
    for name, value in given.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [f"--no-{name.replace('_', '-')}"] if value is False else [flag, str(value)]
    settings = live_settings(parser.parse_args(argv))
    declared = {s.name for s in settings_of(LiveSettings)} | {s.name for s in settings_of(type(LIVE))}
    assert declared - {"name"} == set(given)  # every flag of a setting is given above
    for name, value in given.items():
        assert getattr(settings.pipeline if hasattr(LIVE, name) else settings, name) == value, name
    assert settings.pipeline.doubtful_faces  # blur hides the doubtful faces too


def test_a_setting_below_its_least_is_refused_by_its_flag(capsys):
    from mask_detector.cli import add_live_arguments, new_parser

    parser = new_parser("test")
    add_live_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--clip-after", "-1"])
    assert "--clip-after: must be at least 0, got -1" in capsys.readouterr().err


def test_a_number_that_is_not_finite_is_refused(capsys):
    from mask_detector.cli import add_live_arguments, new_parser

    parser = new_parser("test")
    add_live_arguments(parser)
    for flag, value in (("--keep-days", "nan"), ("--max-fps", "inf")):
        with pytest.raises(SystemExit):
            parser.parse_args([flag, value])
        assert f"{flag}: expected a finite number, got {value}" in capsys.readouterr().err


def test_a_flag_keeps_to_the_greatest_value_its_setting_declares(capsys):
    """A port of 70000 was refused in a site file but taken as a flag, and failed later, unexpectedly."""
    from mask_detector.cli import add_setting_flags, new_parser
    from mask_detector.service.config import SiteSettings

    parser = new_parser("test")
    add_setting_flags(parser, SiteSettings(), names=("metrics_port",))
    assert parser.parse_args(["--metrics-port", "65535"]).metrics_port == 65535
    with pytest.raises(SystemExit):
        parser.parse_args(["--metrics-port", "70000"])
    assert "--metrics-port: must be at most 65535, got 70000" in capsys.readouterr().err
