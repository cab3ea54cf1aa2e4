"""detect_mask_image.py never damages a user's files: refused overwrites, mirrored folders, full disks, FIFOs, links."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest

from support.image_script import photo_folder
from support.scripts import (
    DATASET, ROOT, assert_one_line_error, read_records, require, run_all, run_script, script_env, small_disk,
)


def test_unwritable_output_folder(model_runs):
    assert_one_line_error(model_runs["unwritable output"], "cannot write to", "a file: it is a file")


def assert_unchanged(folder, kept):
    assert sorted(p.name for p in folder.iterdir()) == sorted(kept)
    for name, data in kept.items():
        assert (folder / name).read_bytes() == data, f"{name} was changed"


@pytest.fixture(scope="module")
def refused_runs(samples, tmp_path_factory):
    """Runs that must be refused before any work, each with the folder it must leave as it was."""
    base = tmp_path_factory.mktemp("refused")
    folders = {name: base / name for name in ("into itself", "json on a photo", "one photo onto itself", "many")}
    kept = {name: photo_folder(folder, samples[:2]) for name, folder in folders.items()}
    first = folders["one photo onto itself"] / samples[0].name
    runs = {
        "into itself": ("--image", folders["into itself"], "--output", folders["into itself"]),
        "json on a photo": ("--image", folders["json on a photo"], "--json", folders["json on a photo"] / samples[1].name),
        "one photo onto itself": ("--image", first, "--output", first),
        "many": ("--image", *sorted(folders["many"].iterdir()), "--output", folders["many"] / "result.jpg"),
    }
    results = run_all({name: ("detect_mask_image.py", *args, "--no-display") for name, args in runs.items()})
    return SimpleNamespace(results=results, folders=folders, kept=kept)


def test_output_into_the_input_folder_is_refused(refused_runs, samples):
    """Once: annotated copies would replace the photos."""
    folder = refused_runs.folders["into itself"]
    assert_one_line_error(
        refused_runs.results["into itself"], f"--output {folder} would overwrite the input photo {folder / samples[0].name}"
    )
    assert_unchanged(folder, refused_runs.kept["into itself"])
    assert_one_line_error(refused_runs.results["one photo onto itself"], "would overwrite the input photo")
    assert_unchanged(refused_runs.folders["one photo onto itself"], refused_runs.kept["one photo onto itself"])


def test_json_naming_an_input_photo_is_refused(refused_runs, samples):
    """Once: the JSON Lines would have replaced the photo before it was read."""
    folder = refused_runs.folders["json on a photo"]
    assert_one_line_error(
        refused_runs.results["json on a photo"], f"--json {folder / samples[1].name} is one of the input photos"
    )
    assert_unchanged(folder, refused_runs.kept["json on a photo"])


def test_image_named_output_for_several_photos_is_refused(refused_runs):
    """Once: `--output result.jpg` for two photos made a folder named result.jpg."""
    folder = refused_runs.folders["many"]
    assert_one_line_error(
        refused_runs.results["many"], f"--output {folder / 'result.jpg'} names one image, but there are 2 photos"
    )
    assert_unchanged(folder, refused_runs.kept["many"])


def test_photos_with_one_name_in_two_folders_are_both_kept(samples, default_model, tmp_path):
    """Once: copies of a.jpg from two folders overwrote each other; now the input tree is mirrored."""
    photo_folder(tmp_path / "monday", [samples[0]], ["photo.jpg"])
    photo_folder(tmp_path / "tuesday", [samples[4]], ["photo.jpg"])
    photo_folder(tmp_path / "tuesday", [samples[1]])
    result = run_script(
        "detect_mask_image.py", "--image", tmp_path / "monday", tmp_path / "tuesday", "--no-display",
        "--output", tmp_path / "annotated", "--json", tmp_path / "results.jsonl",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    written = sorted(str(p.relative_to(tmp_path / "annotated")) for p in (tmp_path / "annotated").rglob("*.jpg"))
    assert written == ["monday/photo.jpg", f"tuesday/{samples[1].name}", "tuesday/photo.jpg"]
    for record in records:
        copy = tmp_path / "annotated" / Path(record["image"]).relative_to(tmp_path)
        assert cv2.imread(str(copy)).shape[:2] == (record["height"], record["width"])
    assert {(r["width"], r["height"]) for r in records[:1] + records[2:]} == {
        cv2.imread(str(p)).shape[1::-1] for p in (samples[0], samples[4])
    }


def fill_up(disk, leave):
    """Fill the file system of ``disk`` until only ``leave`` bytes are free."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as stream:
        try:
            while stream.write(b"\0" * 4096):
                pass
        except OSError:
            pass  # full
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def test_full_disk_says_so_and_leaves_no_partial_file(samples, default_model, tmp_path):
    """Once: a truncated JPEG, a lost JSON line, `unexpected OSError`; now one line, nothing half-written."""
    with small_disk(tmp_path / "images disk") as images_disk, small_disk(tmp_path / "json disk") as json_disk:
        for disk in (images_disk, json_disk):
            (disk / "results.jsonl").write_text('{"image": "from an earlier run"}\n')
        fill_up(images_disk, leave=16_000)  # less than one annotated photo
        fill_up(json_disk, leave=0)
        runs = {
            "images": ("detect_mask_image.py", "--image", *samples[:3], "--no-display",
                       "--output", images_disk / "annotated", "--json", images_disk / "results.jsonl"),
            "json": ("detect_mask_image.py", "--image", *samples[:3], "--no-display", "--json", json_disk / "results.jsonl"),
        }
        results = run_all(runs)
        assert_one_line_error(results["images"], f"no space left on device writing {images_disk / 'annotated'}")
        assert_one_line_error(results["json"], f"no space left on device writing {json_disk / 'results.jsonl'}")
        for disk in (images_disk, json_disk):
            left = sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))
            assert left in (["filler", "results.jsonl"], ["annotated", "filler", "results.jsonl"]), left
            assert (disk / "results.jsonl").read_text() == '{"image": "from an earlier run"}\n'
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", str(samples[0]), "--no-display", "--json", "-"],
            cwd=ROOT, env=script_env(), stdout=full, stderr=subprocess.PIPE, text=True, timeout=300,
        )
    assert_one_line_error(result, "no space left on device writing standard output")


def test_two_runs_writing_one_json_file_at_once(default_model, tmp_path):
    """Once: interleaved lines and NUL bytes before; now the file is one whole run's lines."""
    observations = require(DATASET / "observations")
    sets = [sorted((observations / folder).glob("*.jpg"))[:60] for folder in ("with_mask", "without_mask")]
    results = tmp_path / "shared" / "results.jsonl"
    processes = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "detect_mask_image.py"), "--image", *map(str, photos), "--no-display",
             "--single-scale", "--json", str(results)],
            cwd=ROOT, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for photos in sets
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode in (0, 1), stderr[-3000:]
        assert "Traceback" not in stderr and "unexpected" not in stderr, stderr[-3000:]
    data = results.read_bytes()
    assert b"\0" not in data
    images = [json.loads(line)["image"] for line in data.decode().splitlines()]
    assert images in ([str(p) for p in sets[0]], [str(p) for p in sets[1]])
    assert [p.name for p in results.parent.iterdir()] == ["results.jsonl"]  # no partial file left


@pytest.fixture(scope="module")
def folder_runs(samples, tmp_path_factory):
    """A folder of photos with a sub-folder, a FIFO and a broken link, searched with and without --recursive."""
    base = tmp_path_factory.mktemp("tree")
    folder = base / "photos"
    photo_folder(folder, [samples[0]])
    photo_folder(folder / "sub", [samples[1]])
    os.mkfifo(folder / "fifo.jpg")
    (folder / "broken.jpg").symlink_to(base / "gone.jpg")
    runs = {
        "flat": ("--image", folder, "--json", base / "flat.jsonl"),
        "recursive": ("--image", folder, "--recursive", "--output", base / "annotated", "--json", base / "deep.jsonl"),
        "fifo": ("--image", folder / "fifo.jpg"),
        "broken link": ("--image", folder / "broken.jpg"),
    }
    results = run_all({name: ("detect_mask_image.py", *args, "--no-display") for name, args in runs.items()})
    return SimpleNamespace(results=results, folder=folder, base=base)


def test_sub_folders_are_searched_only_when_asked(folder_runs, samples):
    """Once: sub-folders were skipped without a word; now said, and searched with --recursive."""
    flat, folder = folder_runs.results["flat"], folder_runs.folder
    assert flat.returncode == 0, flat.stderr[-3000:]
    assert f"note: 1 sub-folder of {folder} not searched (sub); add --recursive" in flat.stderr.splitlines()
    assert list(read_records(folder_runs.base / "flat.jsonl")) == [samples[0].name]
    deep = folder_runs.results["recursive"]
    assert deep.returncode == 0, deep.stderr[-3000:]
    assert "not searched" not in deep.stderr
    assert sorted(read_records(folder_runs.base / "deep.jsonl")) == sorted([samples[0].name, samples[1].name])
    annotated = folder_runs.base / "annotated"
    written = sorted(str(p.relative_to(annotated)) for p in annotated.rglob("*.jpg"))
    assert written == sorted([samples[0].name, f"sub/{samples[1].name}"])


def test_fifo_and_broken_link_are_called_what_they_are(folder_runs):
    """Once: both were reported as "does not exist"."""
    folder, results = folder_runs.folder, folder_runs.results
    assert_one_line_error(results["fifo"], f"{folder / 'fifo.jpg'} is a FIFO (named pipe), not a file")
    assert_one_line_error(results["broken link"], f"{folder / 'broken.jpg'} is a broken symbolic link (to ")
    notes = results["flat"].stderr.splitlines()
    assert f"note: skipping {folder / 'fifo.jpg'}: it is a FIFO (named pipe), not a file" in notes
    assert any(line.startswith(f"note: skipping {folder / 'broken.jpg'}: it is a broken symbolic link") for line in notes)


def test_recursive_search_mirrors_only_the_folders_that_tell_photos_apart(samples, tmp_path):
    """Issue 20 (smaller): one photo found deep in a --recursive search was copied to OUTPUT/a/b/photo.jpg."""
    photo_folder(tmp_path / "one" / "a" / "b", [samples[0]])
    photo_folder(tmp_path / "two" / "a" / "b", [samples[0]])
    photo_folder(tmp_path / "two" / "a" / "c", [samples[1]])
    results = run_all({name: ("detect_mask_image.py", "--image", tmp_path / name, "--recursive", "--no-display",
                              "--output", tmp_path / f"{name} annotated") for name in ("one", "two")})
    for name, result in results.items():
        assert result.returncode == 0, result.stderr[-3000:]
    written = {name: sorted(p.relative_to(tmp_path / f"{name} annotated").as_posix()
                            for p in (tmp_path / f"{name} annotated").rglob("*.jpg")) for name in ("one", "two")}
    assert written == {"one": [samples[0].name], "two": sorted([f"b/{samples[0].name}", f"c/{samples[1].name}"])}


def test_a_folder_of_links_to_one_photo_does_it_once_and_says_so(samples, tmp_path):
    folder = tmp_path / "links"
    folder.mkdir()
    for number in range(20):
        (folder / f"link{number:02d}.jpg").symlink_to(samples[0])
    result = run_script("detect_mask_image.py", "--image", folder, "--no-display", "--json", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1
    assert "note: 19 files named a photo already listed (a link, or given twice); each photo is done once" in (
        result.stderr)
