"""photos.resume: which lines of an earlier --json a resumed run keeps, and which photos it still does."""

import json
import os

from mask_detector.photos import file_stamp, resume


def test_resume_keeps_whole_lines_and_skips_only_unchanged_photos(tmp_path):
    photos = []
    for name in ("done.jpg", "changed.jpg", "new.jpg"):
        (tmp_path / name).write_bytes(b"not decoded here")
        photos.append((tmp_path / name, name))
    done, changed, new = (str(path) for path, _ in photos)
    lines = [
        json.dumps({"image": done} | file_stamp(done) | {"faces": []}),
        json.dumps({"image": changed} | file_stamp(changed) | {"faces": []}),
        json.dumps({"image": "elsewhere.jpg", "size": 1, "mtime": 2.0}),  # another run's photo: kept
        json.dumps({"image": done} | file_stamp(done) | {"faces": [1]}),  # the same photo twice: once is enough
        '{"image": ["not a path"]}',
        "not JSON at all",
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("\n".join(lines))  # no newline after the last line
    os.utime(changed, (0, 12345))
    earlier, todo = resume(str(results), photos)
    assert earlier == "".join(line + "\n" for line in (lines[0], *lines[2:3], *lines[4:]))
    assert todo == photos[1:]


def test_nothing_to_resume(tmp_path):
    photos = [(tmp_path / "a.jpg", "a.jpg")]
    assert resume(None, photos) == ("", photos)
    assert resume("-", photos) == ("", photos)
    assert resume(str(tmp_path / "missing.jsonl"), photos) == ("", photos)
