"""The asset command: copies from a mirror, checks every sha256, is idempotent, never half-installs."""

import shutil
import urllib.request

import pytest

from support.scripts import ROOT, SAMPLES, require, run_module, script_env
from mask_detector import assets
from mask_detector.errors import UserError

PROTOTXT = next(a for a in assets.DETECTOR_FILES if a.name == "deploy.prototxt")


@pytest.fixture
def mirror(tmp_path):
    """A small mirror folder laid out like the real one, built from the installed files."""
    root = tmp_path / "mirror"
    detector_dir = root / "assets" / "face_detector"
    detector_dir.mkdir(parents=True)
    shutil.copyfile(require(assets.FACE_DETECTOR_DIR / PROTOTXT.name), detector_dir / PROTOTXT.name)
    shutil.copytree(require(SAMPLES), root / "samples")
    return root


def test_file_is_copied_then_left_alone(mirror, tmp_path):
    destination = tmp_path / "out" / PROTOTXT.name
    assert assets.fetch_file(PROTOTXT, destination, mirror) == "copied"
    assert assets.sha256_of(destination) == PROTOTXT.sha256
    assert assets.fetch_file(PROTOTXT, destination, mirror) == "present"


def test_file_with_wrong_checksum_is_refused_and_removed(mirror, tmp_path):
    source = mirror / PROTOTXT.mirror_path
    source.write_bytes(source.read_bytes() + b"\n# tampered\n")
    destination = tmp_path / "out" / PROTOTXT.name
    with pytest.raises(UserError, match="checksum mismatch"):
        assets.fetch_file(PROTOTXT, destination, mirror)
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []  # no partial file left behind


def test_corrupt_installed_file_is_replaced(mirror, tmp_path):
    destination = tmp_path / PROTOTXT.name
    destination.write_text("half a file")
    assert assets.fetch_file(PROTOTXT, destination, mirror) == "copied"
    assert assets.sha256_of(destination) == PROTOTXT.sha256


def test_folder_is_checked_as_a_whole(mirror, tmp_path):
    destination = tmp_path / "samples"
    assert assets.fetch_tree(assets.SAMPLES, destination, mirror) == "copied"
    assert len(list(destination.iterdir())) == assets.SAMPLES.file_count
    assert assets.fetch_tree(assets.SAMPLES, destination, mirror) == "present"


@pytest.mark.parametrize("change", ["modify", "add", "remove"])
def test_folder_with_any_changed_file_is_refused(mirror, tmp_path, change):
    photos = sorted((mirror / "samples").iterdir())
    if change == "modify":
        photos[0].write_bytes(photos[0].read_bytes()[:-10])
    elif change == "add":
        (mirror / "samples" / "extra.jpg").write_bytes(photos[0].read_bytes())
    else:
        photos[0].unlink()
    destination = tmp_path / "samples"
    with pytest.raises(UserError, match="checksum mismatch"):
        assets.fetch_tree(assets.SAMPLES, destination, mirror)
    assert not destination.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["mirror"]  # no staging folder left


def test_no_network_and_no_mirror_names_both_options(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(UserError) as error:
        assets.fetch_file(PROTOTXT, tmp_path / PROTOTXT.name)
    message = str(error.value)
    assert "--mirror" in message and "internet" in message
    assert not (tmp_path / PROTOTXT.name).exists()


def test_only_https_downloads(tmp_path):
    plain = assets.AssetFile("x/file", "http://example.org/file", PROTOTXT.sha256)
    with pytest.raises(UserError, match="insecure"):
        assets.fetch_file(plain, tmp_path / "file")


def test_every_asset_has_an_https_url_and_a_sha256():
    for asset in (*assets.DETECTOR_FILES, assets.BACKBONE_FILE):
        assert asset.url.startswith("https://")
        assert len(asset.sha256) == 64 and int(asset.sha256, 16) >= 0
    for tree in (*assets.DATASETS, *assets.EVALUATION_SETS, assets.SAMPLES):
        assert len(tree.digest) == 64
        assert tree.archive_url == "" or tree.archive_url.startswith("https://")


def test_command_without_mirror_or_network_fails_in_one_line(tmp_path):
    # The backbone weights are missing from this KERAS_HOME, so the command must download them.
    result = run_module("mask_detector.assets", "--no-datasets", "--no-samples",
                        env=script_env(KERAS_HOME=tmp_path / "keras"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot download https://"), result.stderr
    assert "--mirror" in lines[0]
    assert not any((tmp_path / "keras").rglob("*.h5"))


def test_command_with_missing_mirror_folder(tmp_path):
    result = run_module("mask_detector.assets", "--mirror", tmp_path / "nowhere")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: mirror folder {tmp_path / 'nowhere'} does not exist"


def test_installed_assets_are_not_tracked_by_git():
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "face_detector", "dataset", "samples", "evaluation"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if tracked.returncode != 0:
        pytest.fail("git is needed to check what the repository tracks")
    # Only the notes that say what belongs in those folders are tracked.
    assert all(line.endswith("/README.md") for line in tracked.stdout.splitlines()), tracked.stdout
