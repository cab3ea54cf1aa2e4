"""mask_detector/__main__.py and pyproject.toml: `python -m mask_detector` and the `mask-detector` command run the
scripts by task, with the same results as the scripts themselves."""

import json
import shutil
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


def installed_elsewhere(tmp_path):
    """The project built as a wheel and installed into a virtual environment of its own, outside the clone, as
    `pip install .` installs it; the libraries come from the test's own environment (a path, not a site)."""
    import site
    import sysconfig

    # Built from a copy of what the wheel takes: building writes build/ and egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "mask_detector", source / "mask_detector", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ["pyproject.toml", "requirements.txt", "README.md", *(path.name for path in ROOT.glob("*.py")),
                 "models/mask_detector.h5", "models/mask_detector.json"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    libraries = [path for path in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(path).is_dir()]
    (Path(purelib) / "libraries.pth").write_text("\n".join(sorted(set(libraries))) + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    return venv, wheel


def test_an_installed_command_fetches_everything_into_the_user_s_data_folder(samples, tmp_path):
    """Once, after `pip install .`, the command looked for its models in the current folder, said to run a
    module and to train a model, and named no place."""
    import zipfile

    import mask_detector.assets as assets

    venv, wheel = installed_elsewhere(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith("mask_detector/service/supervisor.py") for name in names)
    assert any(name.endswith("share/face-mask-detector/models/mask_detector.h5") for name in names)
    # A mirror of the files set-up fetches, made from this clone's.
    mirror = tmp_path / "mirror"
    installed = {asset: assets.FACE_DETECTOR_DIR / asset.name for asset in [*assets.DETECTOR_FILES, assets.FACE_MESH]}
    installed[assets.BACKBONE_FILE] = assets.backbone_weights_path()
    for asset, path in installed.items():
        (mirror / asset.mirror_path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / asset.mirror_path).write_bytes(path.read_bytes())
    (mirror / "samples").mkdir()
    for photo in samples:
        (mirror / "samples" / photo.name).write_bytes(photo.read_bytes())
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = script_env(HOME=str(home))
    for name in ("MASK_DETECTOR_HOME", "XDG_DATA_HOME", "KERAS_HOME"):
        env.pop(name, None)
    env["PYTHONPATH"] = ""  # the installed package, not the clone's

    def command(*args):
        return subprocess.run([str(venv / "bin" / "mask-detector"), *map(str, args)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)

    data = home / ".local" / "share" / "mask-detector"
    missing = command("image", "--image", samples[0], "--no-display")
    assert missing.returncode != 0 and "mask-detector fetch" in missing.stderr and str(data) in missing.stderr
    fetched = command("fetch", "--mirror", mirror, "--no-datasets")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert (data / "models" / "mask_detector.h5").is_file()
    assert (data / "models" / "mask_detector_float16.tflite").is_file()  # the fast copy the scripts load
    assert (data / "face_detector" / "face_detection_yunet_2023mar.onnx").is_file()
    result = command("image", "--image", samples[0], "--no-display", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["faces"] and not list(work.iterdir())
