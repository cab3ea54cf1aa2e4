"""mask_detector/__main__.py and pyproject.toml: `python -m mask_detector` and the `mask-detector` command run the
scripts by task, with the same results as the scripts themselves."""

import json
import subprocess
import sys
from pathlib import Path

from support.scripts import ROOT, run_module, run_script, script_env


def test_the_command_runs_the_photo_script(samples):
    photo = samples[0]
    by_script = run_script("detect_mask_image.py", "--image", photo, "--no-display", "--json", "-")
    by_module = run_module("mask_detector", "image", "--image", photo, "--no-display", "--json", "-")
    # Set-up installs the project (pip install -e .): its command sits beside the interpreter.
    command = Path(sys.executable).parent / "mask-detector"
    assert command.is_file(), "set-up did not install the mask-detector command (pip install -e .)"
    by_command = subprocess.run([str(command), "image", "--image", str(photo), "--no-display", "--json", "-"],
                                cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=300)
    records = [json.loads(result.stdout) for result in (by_script, by_module, by_command)]
    assert records[0]["faces"] and records[0] == records[1] == records[2]


def test_each_task_has_its_help_under_its_command_name():
    for task in ("video", "image", "train", "evaluate", "export", "make-faces", "fetch"):
        result = run_module("mask_detector", task, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: "), task
    result = run_module("mask_detector", "video", "--help")
    assert result.stdout.startswith("usage: mask-detector video ")


def test_an_unknown_task_is_refused_with_the_list():
    result = run_module("mask_detector", "predict")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: unknown command 'predict'; choose one of video, image, train, evaluate, export, make-faces, fetch")
    assert run_module("mask_detector").returncode == 2
    assert run_module("mask_detector", "--help").returncode == 0
