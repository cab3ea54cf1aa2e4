"""photos.resume: which lines of an earlier --json a resumed run keeps, and which photos it still does;
photos.plan_outputs: where annotated copies go, and the outputs it refuses because they would destroy an input."""

import json
import os

import pytest

from mask_detector.errors import UserError
from mask_detector.photos import file_stamp, find_photos, plan_outputs, resume


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


def photo_folder(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"photo bytes, never read by planning")
    return folder


def refusal(photos, output, json_path=None):
    with pytest.raises(UserError) as refused:
        plan_outputs(photos, output, json_path)
    assert "\n" not in str(refused.value)
    return str(refused.value)


def test_outputs_that_would_overwrite_an_input_photo_are_refused(tmp_path):
    folder = photo_folder(tmp_path / "photos", ["a.jpg", "b.jpg"])
    photos = find_photos([folder])
    assert refusal(photos, folder) == (f"--output {folder} would overwrite the input photo {folder / 'a.jpg'}; "
                                       f"choose another folder")
    one = find_photos([folder / "a.jpg"])
    assert "would overwrite the input photo" in refusal(one, folder / "a.jpg")
    os.link(folder / "a.jpg", tmp_path / "hard link.jpg")  # another name, the same file
    assert "would overwrite the input photo" in refusal(one, tmp_path / "hard link.jpg")
    assert refusal(photos, None, str(folder / "b.jpg")) == (f"--json {folder / 'b.jpg'} is one of the input photos, "
                                                            f"which it would overwrite")
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "b.jpg"]


def test_outputs_that_cannot_be_what_they_name_are_refused(tmp_path):
    folder = photo_folder(tmp_path / "photos", ["a.jpg", "b.jpg"])
    photos = find_photos([folder])
    assert refusal(photos, tmp_path / "result.jpg") == (f"--output {tmp_path / 'result.jpg'} names one image, but "
                                                        f"there are 2 photos; give a folder")
    assert refusal(photos, None, str(tmp_path)) == (f"--json {tmp_path} is a folder; give a file name such as "
                                                    f"results.jsonl")
    same = str(tmp_path / "out.jpg")
    one = find_photos([folder / "a.jpg"])
    assert refusal(one, same, same) == f"--output {same} and --json {same} name the same file"
    (tmp_path / "a file").write_text("")
    assert refusal(photos, tmp_path / "a file" / "copies").startswith(f"cannot write to {tmp_path / 'a file'}")
    assert not (tmp_path / "result.jpg").exists()


def test_copies_keep_their_names_and_photos_sharing_a_name_mirror_their_folders(tmp_path):
    first = photo_folder(tmp_path / "in" / "day1", ["a.jpg", "b.jpg"])
    second = photo_folder(tmp_path / "in" / "day2", ["a.jpg"])
    out = tmp_path / "out"
    assert plan_outputs(find_photos([first]), out, None) == {first / "a.jpg": out / "a.jpg",
                                                             first / "b.jpg": out / "b.jpg"}
    plan = plan_outputs(find_photos([first, second]), out, str(tmp_path / "results.jsonl"))
    assert plan == {first / "a.jpg": out / "day1" / "a.jpg", first / "b.jpg": out / "day1" / "b.jpg",
                    second / "a.jpg": out / "day2" / "a.jpg"}
    assert plan_outputs(find_photos([first / "a.jpg"]), out / "one.png", None) == {first / "a.jpg": out / "one.png"}
    assert plan_outputs(find_photos([first]), None, "-") == {}
