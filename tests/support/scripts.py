"""Run the real scripts in a subprocess, with a clean environment, and read what they left."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
DATASET = ROOT / "dataset"
VOC_DEV = ROOT / "evaluation" / "facemask_voc_dev"


def require(path):
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: run the set-up step (`make setup`) first")
    return Path(path)


def ctrl_c_at_default():
    """A Popen preexec_fn: the child starts with Ctrl-C at its default, as a shell starts a command in the
    foreground. A child inherits an ignored SIGINT, and Python then leaves it ignored, so a test that
    stops a run with SIGINT must not depend on what the test process was left with."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def script_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # No test may reach the network: downloads go to a closed port and fail at once.
    env["HTTPS_PROXY"] = env["https_proxy"] = "http://127.0.0.1:9"
    env.pop("DISPLAY", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def user_env():
    """The environment of a user who set nothing: the scripts must keep the libraries quiet themselves."""
    env = script_env()
    for name in ("TF_CPP_MIN_LOG_LEVEL", "OPENCV_LOG_LEVEL", "QT_LOGGING_RULES"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def small_disk(folder, size="1m", read_only=False):
    """A real, tiny file system (tmpfs) mounted at ``folder``: it fills up, or refuses every write.

    Mounting needs root, as in CI; a root user ignores file permissions, so
    only a read-only mount really refuses writes.
    """
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs and needs root (as in CI)")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def run_script(script, *args, timeout=600, env=None, python=sys.executable, cwd=ROOT):
    """Run one of the project's scripts with the given arguments; return the CompletedProcess."""
    command = [python, str(ROOT / script), *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, env=env or script_env(), capture_output=True, text=True, timeout=timeout
    )


def run_module(module, *args, timeout=300, env=None):
    """Run ``python -m module`` from the project root; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT, env=env or script_env(), capture_output=True, text=True, timeout=timeout,
    )


def run_all(runs, parallel=2):
    """Run {name: (script, *args)} two at a time; return {name: CompletedProcess}.

    For runs that only fail: each spends seconds importing TensorFlow, so they share the wait.
    """
    with ThreadPoolExecutor(parallel) as pool:
        results = pool.map(lambda args: run_script(*args, timeout=300), runs.values())
        return dict(zip(runs, results))


def assert_one_line_error(result, *fragments, status=1):
    """Exit ``status``, no traceback, and exactly one `error:` line, the last one, holding ``fragments``."""
    stderr = result.stderr
    assert result.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == errors[0]
    for fragment in fragments:
        assert fragment in errors[0]
    return errors[0]


def read_records(path):
    return {Path(r["image"]).name: r for r in map(json.loads, Path(path).read_text(encoding="utf-8").splitlines())}


def wait_until(condition, limit=120.0, every=0.1):
    """Poll ``condition`` until it is true or ``limit`` seconds have gone; its last answer."""
    deadline = time.monotonic() + limit
    while True:
        answer = condition()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(every)


def group_members(group):
    """The living processes (zombies left out) whose process group is ``group``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members
