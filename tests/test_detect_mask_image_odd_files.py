"""detect_mask_image.py on awkward and damaged files: odd formats, EXIF turns, huge, empty, cut, fuzzed or missing."""

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from support.image_script import IMAGE_KEYS, photo_folder
from support.media import mutate
from support.scripts import ROOT, assert_one_line_error, read_records, run_script, script_env

ERROR_KEYS = {"image", "size", "mtime", "error", "settings"}
ODD_FOLDER = "odd photos ü 写真"  # spaces and non-ASCII characters in every path of the folder run


def make_odd_images(folder, photo):
    """Write one file per awkward case into ``folder``; return {case: file name}."""
    from PIL import Image

    folder.mkdir(parents=True)
    image = cv2.imread(str(photo))
    height, width = image.shape[:2]
    files = {}

    def write(case, name, data):
        (folder / name).write_bytes(data)
        files[case] = name

    def encode(suffix, pixels):
        return cv2.imencode(suffix, pixels)[1].tobytes()

    photo_bytes = photo.read_bytes()
    write("plain", "plain copy é 写真.jpg", photo_bytes)
    write("empty", "empty.jpg", b"")
    write("text", "notes.jpg", b"not a picture, only text\n")
    write("truncated", "truncated.jpg", photo_bytes[: len(photo_bytes) // 2])
    write("one_pixel", "one pixel.png", encode(".png", image[:1, :1]))
    write("grey", "grey.png", encode(".png", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)))
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = np.linspace(0, 255, width, dtype=np.uint8)  # transparent on the left, opaque on the right
    write("rgba", "rgba.png", encode(".png", rgba))
    write("16-bit", "sixteen bit.png", encode(".png", image.astype(np.uint16) * 257))
    Image.open(photo).convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    files["cmyk"] = "cmyk.jpg"
    # EXIF orientation 6 says "turn 90 degrees clockwise to show", 8 "turn 90 degrees anticlockwise".
    for orientation, stored in ((6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.open(photo).transpose(stored).save(folder / f"exif {orientation}.jpg", "JPEG", exif=exif.tobytes())
        files[f"exif_{orientation}"] = f"exif {orientation}.jpg"
    # A face at the left and one at the right edge of the photo, both cut by the new borders.
    write("border", "cut at the border.jpg", encode(".jpg", image[height // 12:, width // 10: width - width // 10]))
    write("huge", "huge.jpg", encode(".jpg", cv2.resize(image, (10000, 8000), interpolation=cv2.INTER_LINEAR)))

    # The files really are what they claim to be.
    unchanged = {case: cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED) for case, name in files.items()
                 if case in ("grey", "rgba", "16-bit")}
    assert unchanged["grey"].ndim == 2 and unchanged["rgba"].shape[2] == 4 and unchanged["16-bit"].dtype == np.uint16
    assert Image.open(folder / "cmyk.jpg").mode == "CMYK"
    assert Image.open(folder / "exif 6.jpg").size == (height, width)
    return files


@pytest.fixture(scope="module")
def odd_run(samples, default_model, tmp_path_factory):
    """One run of detect_mask_image.py over a folder of awkward files, with --json and --output."""
    base = tmp_path_factory.mktemp("odd")
    folder = base / ODD_FOLDER
    files = make_odd_images(folder, samples[0])
    result = run_script(
        "detect_mask_image.py", "--image", folder, "--no-display",
        "--json", base / "results ü.jsonl", "--output", base / "annotated é",
    )
    records = read_records(base / "results ü.jsonl")
    return SimpleNamespace(
        result=result, records={case: records.get(name) for case, name in files.items()},
        annotated=base / "annotated é", files=files,
    )


def assert_photo_record(record, odd_run, size=None):
    """A successful line in the exact schema, with its annotated copy written at the same size."""
    from PIL import Image

    assert record is not None and set(record) == IMAGE_KEYS, record
    if size is not None:
        assert (record["width"], record["height"]) == size
    for face in record["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= record["width"] and 0 <= y1 < y2 <= record["height"], face
    with Image.open(odd_run.annotated / Path(record["image"]).name) as written:
        assert written.size == (record["width"], record["height"]) and written.mode == "RGB"
    return record


def assert_error_record(record, fragment):
    assert record is not None and set(record) == ERROR_KEYS, record
    assert fragment in record["error"]


def test_folder_run_reports_bad_files_in_their_line_and_goes_on(odd_run):
    result, records, files = odd_run.result, odd_run.records, odd_run.files
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert all(record is not None for record in records.values()), "every file gets its JSON line"
    failed = [case for case, record in records.items() if "error" in record]
    assert sorted(failed) == ["empty", "text", "truncated"]
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"3 of {len(files)} images failed"
    for case in failed:
        assert f"{records[case]['image']}: error: {records[case]['error']}" in result.stderr.splitlines()
    assert len(result.stdout.strip().splitlines()) == len(files) - 3  # one summary line per processed photo


def test_empty_file(odd_run):
    assert_error_record(odd_run.records["empty"], "is empty")


def test_text_file_named_jpg(odd_run):
    assert_error_record(odd_run.records["text"], "is not an image file")


def test_truncated_jpeg(odd_run):
    assert_error_record(odd_run.records["truncated"], "is not an image OpenCV can read")


def test_one_pixel_image(odd_run):
    assert assert_photo_record(odd_run.records["one_pixel"], odd_run, size=(1, 1))["faces"] == []


@pytest.mark.parametrize("case", ["grey", "rgba", "16-bit", "cmyk"])
def test_other_colour_formats_are_read_as_colour_photos(odd_run, case):
    records = odd_run.records
    plain = assert_photo_record(records["plain"], odd_run)
    record = assert_photo_record(records[case], odd_run, size=(plain["width"], plain["height"]))
    assert len(record["faces"]) >= len(plain["faces"]) - 2, (record, plain)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_is_applied(odd_run, samples, orientation):
    from mask_detector.files import read_image

    records = odd_run.records
    plain = records["plain"]
    record = assert_photo_record(records[f"exif_{orientation}"], odd_run, size=(plain["width"], plain["height"]))
    assert len(record["faces"]) >= len(plain["faces"]) - 1
    # The pixels are upright, not only the reported size.
    upright = read_image(record["image"])
    original = cv2.imread(str(samples[0]))
    assert upright.shape == original.shape
    assert np.abs(upright.astype(int) - original.astype(int)).mean() < 8


def test_huge_image_completes_and_reports(odd_run):
    record = assert_photo_record(odd_run.records["huge"], odd_run, size=(10000, 8000))
    assert record["faces"], "the enlarged photo's faces are found"


def test_path_with_spaces_and_non_ascii(odd_run):
    result, records, files = odd_run.result, odd_run.records, odd_run.files
    record = assert_photo_record(records["plain"], odd_run)
    assert record["image"].endswith(f"{ODD_FOLDER}/{files['plain']}")
    assert record["faces"]
    faces = len(record["faces"])
    assert f"{record['image']}: {faces} face{'' if faces == 1 else 's'}," in result.stdout


def test_faces_crossing_the_border(odd_run):
    record = assert_photo_record(odd_run.records["border"], odd_run)
    width, height = record["width"], record["height"]
    boxes = [face["box"] for face in record["faces"]]
    assert len(boxes) >= 3
    assert any(x1 == 0 or y1 == 0 or x2 == width or y2 == height for x1, y1, x2, y2 in boxes), boxes


def test_missing_path(tmp_path):
    result = run_script("detect_mask_image.py", "--image", tmp_path / "nowhere.jpg", "--no-display")
    assert_one_line_error(result, "nowhere.jpg does not exist")


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    (tmp_path / "sub folder.jpg").mkdir()  # a folder named like an image is not an image
    result = run_script("detect_mask_image.py", "--image", tmp_path, "--no-display")
    assert_one_line_error(result, f"folder {tmp_path} holds no images")


def test_fuzzed_images_in_one_folder_run(samples, default_model, tmp_path):
    rng = np.random.default_rng(5)
    jpeg = samples[0].read_bytes()
    png = cv2.imencode(".png", cv2.imread(str(samples[0])))[1].tobytes()
    folder = tmp_path / "fuzz"
    folder.mkdir()
    for index in range(150):
        if index < 10:
            data = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")[index % 2] + rng.bytes(int(rng.integers(0, 5000)))
        else:
            data = mutate(jpeg if index % 3 else png, rng)
        suffix = ".jpg" if data.startswith(b"\xff\xd8") else ".png"
        (folder / f"{index:03d}{suffix}").write_bytes(data)
    result = run_script(
        "detect_mask_image.py", "--image", folder, "--no-display", "--json", tmp_path / "fuzz.jsonl", timeout=240
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr[-3000:]
    records = read_records(tmp_path / "fuzz.jsonl")
    assert sorted(records) == sorted(p.name for p in folder.iterdir())
    for record in records.values():
        assert set(record) in (IMAGE_KEYS, ERROR_KEYS), record
    failed = sum("error" in record for record in records.values())
    assert 10 <= failed < 150
    assert result.stderr.strip().splitlines()[-1] == f"{failed} of 150 images failed"


def png_header(width, height):
    """A PNG file that claims ``width`` x ``height`` pixels and holds almost none of them."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def run_measuring_memory(tmp_path, *args):
    """Run the image script; its exit status, stderr and peak memory (bytes) of that process alone."""
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "detect_mask_image.py"), *map(str, args)],
            cwd=ROOT, env=script_env(), stdout=subprocess.DEVNULL, stderr=stderr,
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, (tmp_path / "stderr").read_text(), usage.ru_maxrss * 1024


def test_huge_images_and_huge_junk_are_refused_from_their_header(samples, default_model, tmp_path):
    """Once: 6 GB for a 30000x30000 PNG, and a 4 GB junk file read whole; now neither is loaded."""
    folder = tmp_path / "photos"
    photo_folder(folder, [samples[0]])
    (folder / "huge.png").write_bytes(png_header(30000, 30000))
    with open(folder / "junk.jpg", "wb") as junk:
        junk.truncate(4 * 2**30)  # sparse: 4 GB that take no disk
    status, stderr, peak = run_measuring_memory(
        tmp_path, "--image", folder, "--no-display", "--json", tmp_path / "results.jsonl"
    )
    assert status == 1, stderr[-3000:]
    records = read_records(tmp_path / "results.jsonl")
    assert_error_record(records["huge.png"], "is 30000x30000 = 900000000 pixels, more than the limit of 200000000")
    assert records["huge.png"]["error"].endswith("raise it with --max-pixels")
    assert_error_record(records["junk.jpg"], "junk.jpg is not an image file")
    assert set(records[samples[0].name]) == IMAGE_KEYS
    assert peak < 3 * 2**30, f"peak memory {peak / 2**30:.1f} GB: the junk file was read"


def test_max_pixels_sets_the_limit(samples, default_model, tmp_path):
    height, width = cv2.imread(str(samples[0])).shape[:2]
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(samples[0])), (width // 2, height // 2)))
    limit = width * height - 1
    result = run_script("detect_mask_image.py", "--image", samples[0], small, "--no-display",
                        "--max-pixels", limit, "--json", tmp_path / "results.jsonl")
    assert result.returncode == 1, result.stderr[-3000:]
    records = read_records(tmp_path / "results.jsonl")
    assert_error_record(records[samples[0].name], f"more than the limit of {limit}")
    assert set(records["small.jpg"]) == IMAGE_KEYS
