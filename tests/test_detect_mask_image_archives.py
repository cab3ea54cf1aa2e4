"""detect_mask_image.py on large archives: worker processes and Ray, runs interrupted and resumed, non-UTF-8 names."""

import hashlib
import json
import os
import subprocess
import sys
import time

from support.scripts import ROOT, assert_one_line_error, ctrl_c_at_default, run_all, run_script, script_env


def test_workers_and_ray_write_what_one_process_writes(samples, default_model, tmp_path):
    """Two processes, and a real local Ray instance: the same JSON bytes and annotated images, in order."""
    def outputs(name):
        return "--output", tmp_path / name, "--json", tmp_path / f"{name}.jsonl"

    runs = {
        name: ("detect_mask_image.py", "--image", samples[0].parent, "--no-display", *flags, *outputs(name))
        for name, flags in {"one": ("--workers", 1), "two": ("--workers", 2), "ray": ("--ray", "local")}.items()
    }
    results = run_all(runs)
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-3000:])
        assert result.stdout == results["one"].stdout
    expected = (tmp_path / "one.jsonl").read_bytes()
    assert [json.loads(line)["image"] for line in expected.splitlines()] == [str(p) for p in samples]
    for name in ("two", "ray"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == expected, name
        for photo in samples:
            assert (tmp_path / name / photo.name).read_bytes() == (tmp_path / "one" / photo.name).read_bytes()


def start_and_stop(command, stop, after_lines):
    """Start a run, and once it has printed ``after_lines`` photo lines, call ``stop(process)``; its result."""
    process = subprocess.Popen(command, cwd=ROOT, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=ctrl_c_at_default)
    for _ in range(after_lines):
        assert process.stdout.readline(), process.communicate(timeout=60)[1][-3000:]
    stop(process)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def kill_a_worker(process):
    found = subprocess.run(["pgrep", "-P", str(process.pid), "-f", "spawn_main"], capture_output=True, text=True)
    os.kill(int(found.stdout.split()[0]), 9)


def test_an_interrupted_run_resumes_and_never_loses_a_written_line(samples, default_model, tmp_path):
    """Ctrl-C, SIGTERM and a killed worker each stop a run; the same command then does only the rest."""
    folder = tmp_path / "archive"
    folder.mkdir()
    # 240 photos: far more than a run does between its third line and the signal, however loaded the machine.
    for copy in range(40):
        for photo in samples:
            (folder / f"{copy}_{photo.name}").write_bytes(photo.read_bytes())
    results = tmp_path / "results.jsonl"
    command = [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(folder), "--no-display",
               "--single-scale", "--workers", "2", "--json", str(results)]
    lines = []
    for stop, status in ((lambda p: p.send_signal(2), 130), (lambda p: p.terminate(), 143), (kill_a_worker, 1)):
        returncode, stderr = start_and_stop(command, stop, after_lines=3)
        assert returncode == status, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        written = results.read_text().splitlines()
        assert written[:len(lines)] == lines and len(written) >= len(lines) + 3, stderr[-3000:]
        lines = written
    assert "run the same command again" in stderr.splitlines()[-1]
    finished = run_script(*command[1:])
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"note: {len(lines)} images already in {results}, skipped" in finished.stderr
    written = results.read_text().splitlines()
    assert written[:len(lines)] == lines
    assert sorted(json.loads(line)["image"] for line in written) == sorted(str(p) for p in folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive", "results.jsonl"]  # no partial file left


def test_ray_not_installed_is_told_in_one_line(samples, tmp_path):
    """A real Python without Ray (the OpenCV 4 environment: OpenCV and NumPy only), as without the optional extra."""
    python = ROOT / ".venv-opencv4" / "bin" / "python"
    assert python.is_file(), "the OpenCV 4 environment is missing: `make test` creates .venv-opencv4"
    without_ray = subprocess.run([python, "-c", "import ray"], capture_output=True, text=True)
    assert "No module named 'ray'" in without_ray.stderr
    result = run_script("detect_mask_image.py", "--image", samples[0], "--no-display", "--ray", "local", python=python)
    assert_one_line_error(result, "--ray needs Ray: pip install -r requirements-ray.txt")
    assert result.stderr == "error: --ray needs Ray: pip install -r requirements-ray.txt\n"


def test_a_missing_model_on_ray_is_told_in_one_line(samples, tmp_path):
    result = run_script("detect_mask_image.py", "--image", *samples[:2], "--no-display", "--ray", "local",
                        "--model", tmp_path / "missing.h5", "--json", tmp_path / "results.jsonl")
    assert_one_line_error(result, f"model file {tmp_path / 'missing.h5'} not found")
    assert not (tmp_path / "results.jsonl").exists()


def test_resuming_redoes_photos_made_with_other_settings_and_says_which_lines_are_for_deleted_photos(
        samples, tmp_path):
    """Issue 20, case 10: the same --json with --detector ssd --confidence 0.95 redoes every photo."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in samples[:2]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    results = tmp_path / "results.jsonl"

    def run(*options):
        result = run_script("detect_mask_image.py", "--image", folder, "--no-display", "--single-scale",
                            "--workers", 1, "--json", results, *options)
        assert result.returncode == 0, result.stderr[-3000:]
        notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
        return notes, [json.loads(line) for line in results.read_text().splitlines()]

    _, first = run()
    model = ROOT / "models" / "mask_detector_float16.tflite"
    assert first[0]["settings"] == {
        "model": "mask_detector_float16.tflite", "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "face_detector": "yunet", "confidence": None, "detect_size": 1280, "single_scale": True,
        "preprocess": "auto"}
    notes, second = run("--detector", "ssd", "--confidence", "0.95")
    assert notes == [f"note: done again: 2 images of {results} made with other settings "
                     "(face_detector yunet, now ssd; confidence default, now 0.95)"]
    assert [r["settings"]["face_detector"] for r in second] == ["ssd", "ssd"]
    notes, third = run("--detector", "ssd", "--confidence", "0.95")
    assert notes == [f"note: 2 images already in {results}, skipped; the rest are added (--restart: all again)"]
    assert third == second
    (folder / samples[0].name).unlink()
    notes, fourth = run("--detector", "ssd", "--confidence", "0.95")
    assert notes == [
        f"note: 1 image already in {results}, skipped; the rest are added (--restart: all again)",
        f"note: kept as they were: 1 line of {results} for photos that no longer exist ({folder / samples[0].name})",
    ]
    assert fourth == third


def test_ray_at_an_address_where_nothing_listens_is_one_line_within_the_timeout(samples, tmp_path):
    """Issue 20, case 4: a real local port with nothing listening; Ray alone waited for more than ten minutes."""
    import socket

    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        start = time.monotonic()
        result = run_script("detect_mask_image.py", "--image", samples[0], "--no-display", "--json",
                            tmp_path / "results.jsonl", "--ray", address, "--timeout", 5, timeout=120)
        seconds = time.monotonic() - start
        line = assert_one_line_error(result, f"cannot reach a Ray cluster at {address} (connection refused)")
        assert "please report" not in line
        assert seconds < 30, seconds
        assert not (tmp_path / "results.jsonl").exists()
    environment = script_env()
    environment.pop("RAY_ADDRESS", None)
    result = run_script("detect_mask_image.py", "--image", samples[0], "--no-display", "--ray", "auto",
                        env=environment, timeout=120)
    line = assert_one_line_error(result, "cannot reach a Ray cluster at auto: none runs on this machine")
    assert "please report" not in line and "--address" not in line


def test_a_file_name_that_is_not_utf8_is_valid_json_and_resumes(samples, tmp_path):
    """Issue 20 (smaller): such names were written as lone surrogates ("\\udce9"), which most JSON readers refuse."""
    folder = tmp_path / "archive"
    folder.mkdir()
    latin1 = os.fsdecode(b"caf\xe9.jpg")  # 'café.jpg' as an old Latin-1 archive names it
    (folder / latin1).write_bytes(samples[0].read_bytes())
    (folder / "plain.jpg").write_bytes(samples[1].read_bytes())
    results = tmp_path / "results.jsonl"
    command = ("detect_mask_image.py", "--image", folder, "--no-display", "--single-scale", "--workers", 1,
               "--json", results)
    first = run_script(*command)
    assert first.returncode == 0, first.stderr[-3000:]
    text = results.read_bytes().decode("utf-8")  # strict: every byte is UTF-8
    assert "\\ud" not in text
    images = [json.loads(line)["image"] for line in text.splitlines()]
    assert images == [str(folder / "caf\\xe9.jpg"), str(folder / "plain.jpg")]
    again = run_script(*command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"note: 2 images already in {results}, skipped" in again.stderr
    assert "no longer exist" not in again.stderr
