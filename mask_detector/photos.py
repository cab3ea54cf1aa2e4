"""Running the pipeline over photo files: which files, one record per photo, where copies go."""

import functools
import json
import os
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple

import cv2

from mask_detector import display, plural
from mask_detector.errors import UserError, first_line
from mask_detector.files import (
    DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, check_writable, path_from_text, path_text, read_image, sha256_of,
    walk_folder, what_is_there, write_image,
)
from mask_detector.labels import CLASS_NAMES, TEXT, THREE_CLASS_NAMES
from mask_detector.privacy import pixelate

WINDOW = "Face mask detector"


def note(text):
    print(f"note: {text}", file=sys.stderr)


def find_photos(inputs, recursive=False):
    """The photos named by files and folders: [(path, name)], each file once, in the order given.

    A photo's ``name`` is its path inside the folder it was found in (its
    file name, for a file given by itself): the name of its annotated copy.
    A path that is neither a file nor a folder stops the run at once.
    """
    photos, seen = [], set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = _photos_in_folder(path, recursive)
            photos += [(photo, photo.relative_to(path)) for photo in found]
        elif path.is_file():
            photos.append((path, Path(path.name)))
        else:
            raise UserError(f"{path} {what_is_there(path)}")
    unique = []
    for photo, name in photos:
        key = os.path.realpath(photo)
        if key not in seen:
            seen.add(key)
            unique.append((photo, name))
    if len(unique) < len(photos):
        # Each photo is done once, under the first name found: say so, or a folder of links looks half done.
        twice = len(photos) - len(unique)
        note(f"{plural(twice, 'file')} named a photo already listed (a link, or given twice); each photo is done once")
    return unique


def _photos_in_folder(folder, recursive):
    files, others, not_searched = walk_folder(folder, recursive)
    for other, what in others:
        note(f"skipping {other}: it {what}")
    if not_searched:
        names = ", ".join(p.name for p in not_searched[:3]) + (", ..." if len(not_searched) > 3 else "")
        note(f"{plural(len(not_searched), 'sub-folder')} of {folder} not searched ({names}); add --recursive")
    found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise UserError(f"folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return found


def plan_outputs(photos, output, json_path):
    """Where each photo's annotated copy goes, {path: copy}, after checking no output destroys an input.

    ``output`` is a file only when it is named like an image and there is
    one photo; otherwise a folder, where each copy keeps its name, or, when
    two photos from different folders share one, the input tree is mirrored.
    """
    inputs = {_identity(photo) for photo, _ in photos}
    if json_path and json_path != "-":
        if Path(json_path).is_dir():
            raise UserError(f"--json {json_path} is a folder; give a file name such as results.jsonl")
        if _identity(json_path) in inputs:
            raise UserError(f"--json {json_path} is one of the input photos, which it would overwrite")
        check_writable(json_path)
    if not output:
        return {}
    output = Path(output)
    if output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir():
        if len(photos) > 1:
            raise UserError(f"--output {output} names one image, but there are {len(photos)} photos; give a folder")
        plan = {photos[0][0]: output}
    else:
        names = [name for _, name in photos]
        # Folders every photo was found in (a single photo deep in a --recursive search) are not mirrored.
        shared = os.path.commonpath([name.parent for name in names]) if all(n.parent.parts for n in names) else ""
        names = [name.relative_to(shared) if shared else name for name in names]
        if len({str(name).casefold() for name in names}) < len(names):
            common = os.path.commonpath([os.path.abspath(photo.parent) for photo, _ in photos])
            names = [Path(os.path.relpath(os.path.abspath(photo), common)) for photo, _ in photos]
        plan = {photo: output / name for (photo, _), name in zip(photos, names)}
    for photo, copy in plan.items():
        if _identity(copy) in inputs:
            raise UserError(f"--output {output} would overwrite the input photo {copy}; choose another folder")
        if json_path and _identity(json_path) in (_identity(copy), _identity(output)):
            raise UserError(f"--output {output} and --json {json_path} name the same file")
    check_writable(next(iter(plan.values())))
    return plan


def _identity(path):
    """What makes two names one file: device and inode if it exists (links, case), else the absolute path."""
    try:
        info = os.stat(path)
        return info.st_dev, info.st_ino
    except OSError:
        return os.path.abspath(path)


def file_stamp(path):
    """A photo's size and modification time: a resumed run takes a recorded photo as done while they hold."""
    try:
        info = os.stat(path)
    except OSError:
        return {}
    return {"size": info.st_size, "mtime": info.st_mtime}


class PhotoJob(NamedTuple):
    """One photo's work, as a worker process or Ray actor is handed it."""

    path: Path
    copy: Path | None = None  # where its annotated copy goes, if anywhere
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are refused
    hide_faces: bool = False  # pixelate its faces (privacy.hides_faces)


def detect_in_photo(pipeline, path, max_pixels=DEFAULT_MAX_PIXELS, hide_faces=False):
    """Read one photo and run the pipeline: (JSON record, image or None, results).

    A photo that cannot be read or processed gives a record with "error" and
    no image, so that one bad file never stops a folder run. With
    ``hide_faces`` (privacy.hides_faces) the image's faces, the doubtful ones too, come pixelated.
    """
    record = {"image": path_text(path)} | file_stamp(path)
    try:
        image = read_image(path, max_pixels)
        results, doubtful = pipeline.label(image)
        if hide_faces:
            pixelate(image, [result.box for result in results] + doubtful)
    except (UserError, cv2.error, MemoryError) as error:
        message = str(error) if isinstance(error, UserError) else f"cannot process {path}: {first_line(error)}"
        return record | {"error": message}, None, []
    height, width = image.shape[:2]
    record |= {"width": width, "height": height, "faces": [result.to_json() for result in results]}
    return record, image, results


def detect_and_save(pipeline, path, copy=None, max_pixels=DEFAULT_MAX_PIXELS, hide_faces=False):
    """detect_in_photo, and the annotated copy written when one is planned: one photo's whole work."""
    record, image, results = detect_in_photo(pipeline, path, max_pixels, hide_faces)
    if image is not None and copy is not None:
        write_image(copy, display.draw_results(image.copy(), results))
    return record, image, results


def settings_record(settings):
    """What decides a photo's result (a pipeline.PipelineSettings), as recorded in its JSON line: a
    resumed run redoes the photos made otherwise.

    The model is known by its file name and its sha256, so a model trained
    again under the same name counts as another; ``confidence`` None is the
    face detector's own default.
    """
    try:
        digest = sha256_of(settings.model_path)
    except OSError:
        digest = None  # no such model: building the pipeline says so in its own words
    return {"model": settings.model_path.name, "model_sha256": digest, "face_detector": settings.face_detector,
            "confidence": settings.confidence, "detect_size": settings.detect_size,
            "single_scale": settings.single_scale, "preprocess": settings.preprocess}


def resume(json_path, photos, made_with=None):
    """What an earlier run left in ``json_path``: (its lines to keep, the photos still to do).

    A photo is done when a line records its path with the size and mtime it
    has now and, when ``made_with`` is given (a settings_record), was made
    with those settings. A line for a photo that has changed since, or was
    made with other settings, is dropped (the photo is done again); every
    other line, ours or not, is kept as it is, and those of photos that no
    longer exist are said.
    """
    if not json_path or json_path == "-" or not Path(json_path).is_file():
        return "", photos
    wanted = {path_text(path): path for path, _ in photos}  # as the lines name them
    kept, done, redone, gone = [], set(), [], []
    for line in Path(json_path).read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        try:
            record = json.loads(line)
            image = record["image"]
        except (ValueError, TypeError, KeyError):
            image = None
        if isinstance(image, str) and image in wanted:
            if image in done or record.get("size") is None or file_stamp(wanted[image]) != _stamp_of(record):
                continue
            if made_with is not None and record.get("settings") != made_with:
                redone.append(record.get("settings"))
                continue
            done.add(image)
        elif isinstance(image, str) and not os.path.lexists(path_from_text(image)):
            gone.append(image)
        kept.append(line + "\n")
    if done:
        note(f"{plural(len(done), 'image')} already in {json_path}, skipped; the rest are added (--restart: all again)")
    if redone:
        note(f"done again: {plural(len(redone), 'image')} of {json_path} made with other settings "
             f"({_differences(redone[0], made_with)})")
    if gone:
        names = ", ".join(gone[:3]) + (", ..." if len(gone) > 3 else "")
        note(f"kept as they were: {plural(len(gone), 'line')} of {json_path} for photos that no longer exist ({names})")
    return "".join(kept), [(path, name) for path, name in photos if path_text(path) not in done]


def _differences(recorded, made_with):
    """How ``recorded`` settings differ from ``made_with``, as 'face_detector yunet, now ssd; ...'."""
    if not isinstance(recorded, dict):
        return "not recorded"
    changed = []
    for key, value in made_with.items():
        if recorded.get(key) != value:
            before = recorded.get(key, "not recorded")
            if key == "model_sha256":
                before, value = str(before)[:12], str(value)[:12]
            changed.append(f"{key} {_shown(before)}, now {_shown(value)}")
    return "; ".join(changed)


def _shown(value):
    return "default" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _stamp_of(record):
    return {"size": record.get("size"), "mtime": record.get("mtime")}


def summary_line(record):
    """The line printed for one photo: its faces and labels, or its error."""
    if "error" in record:
        return f"{record['image']}: error: {record['error']}"
    faces = record["faces"]
    # Faces too small or unsure to judge are counted apart, never as a violation; lines written before
    # faces were judged count every face.
    labels = [face["label"] for face in faces if face.get("judged", True)]
    # A three-class model's faces say whether the mask is worn wrongly.
    shown = THREE_CLASS_NAMES if faces and "incorrect" in faces[0]["probabilities"] else CLASS_NAMES
    line = f"{record['image']}: {plural(len(faces), 'face')}, "
    line += ", ".join(f"{labels.count(label)} {TEXT[label].lower()}" for label in shown)
    if len(labels) < len(faces):
        line += f", {len(faces) - len(labels)} not judged"
    return line


def progress_bar(total, wanted):
    """A bar with images per second and time left on stderr, when it is a terminal; else None."""
    if not (wanted and total > 1 and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=sys.stderr, dynamic_ncols=True)


def run_photos(detections, total, json_lines, show=False, wait_ms=0, every_line=False, made_with=None):
    """Write each photo's JSON line and print its line, show its window; the failures.

    ``detections`` yields (path, record, image, results) in input order, the
    copies already written; image and results only where a window is shown.
    Each photo's line is printed when no progress bar is shown (stderr is
    no terminal) or with ``every_line`` (--verbose). The window, when shown, stops the run on
    q, Esc or closing it, once the photo on screen has its JSON line. ``made_with``
    (a settings_record) is written in each line as "settings", for resuming.
    """
    # With JSON on stdout, the per-photo lines go to stderr to keep stdout parseable.
    summary_out = sys.stderr if json_lines.to_stdout else sys.stdout
    bar = progress_bar(total, not show)
    # Flushed line by line: piped into a log or `tee`, each photo shows as it is done, not at the end.
    report = bar.write if bar else functools.partial(print, flush=True)
    failures = done = 0
    try:
        for done, (path, record, image, results) in enumerate(detections, 1):
            failures += "error" in record
            json_lines.write(record | ({"settings": made_with} if made_with else {}))
            if bar is None or every_line or "error" in record:
                report(summary_line(record), file=sys.stderr if "error" in record else summary_out)
            if bar is not None:
                bar.update()
            if show and image is not None:
                hint = "any key: next photo, q or Esc: stop" if done < total else "any key closes"
                if display.show_photo(WINDOW, image, results, wait_ms, f"{WINDOW}: {path.name} ({hint})"):
                    if done < total:
                        print(f"stopped after {done} of {total} images", file=sys.stderr)
                    break
    except BrokenProcessPool:
        # A worker was killed: the finished lines are kept, so the same command resumes.
        print(f"error: a worker process died after {done} of {plural(total, 'image')}; "
              f"run the same command again to do the rest", file=sys.stderr)
        return failures + 1
    finally:
        detections.close()  # stops the workers now, not at exit
        if bar is not None:
            bar.close()
        if show:
            display.close_windows()
    if failures:
        print(f"{failures} of {plural(total, 'image')} failed", file=sys.stderr)
    return failures
