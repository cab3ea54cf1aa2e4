"""Privacy: faces pixelated in every picture, or no picture at all; and our files kept only so long.

The modes of ``--privacy``:

- ``off``: pictures as they are.
- ``blur``: every face found is pixelated in every picture written (annotated
  photos, video, snapshots, evidence clips) and shown; boxes and labels are drawn on top.
- ``stats``: no picture is written at all, only counts, events and statistics;
  a window, if one is shown, shows faces pixelated, as ``blur`` does.

A face the detector misses is not pixelated: it was not found.
"""

import json
import threading
import time
from pathlib import Path

import cv2

from mask_detector.boxes import grown
from mask_detector.errors import UserError
from mask_detector.files import sha256_of, write_bytes_atomically
from mask_detector.settings import as_flag

PRIVACY_MODES = ("off", "blur", "stats")
# A face becomes at most BLOCKS x BLOCKS blocks of at least LEAST_BLOCK pixels: it shows where a face is
# and its colours (skin, mask), not its features. Chosen on the dev photos, searched as the photo script
# searches: at 5x5 blocks of any size, YuNet found 53 of the 2101 faces and doubtful faces it had hidden
# again, mostly faces under 30 px; with blocks of 16 px or more (a small face is one solid patch), it
# found 5, all faces it had not found before hiding either.
BLOCKS = 5
LEAST_BLOCK = 16
# Shares of the box added on every side: hair, ears and the jaw outside YuNet's box tell who someone is too,
# and with 0.2 a face whose chin stuck out below its hidden box was found again.
MARGIN = 0.3
# The record of the files this project wrote in a folder (snapshots, clips), kept in that folder.
RECORD_NAME = ".mask-detector-files.jsonl"
SWEEP_EVERY_SECONDS = 3600.0


def pixelate(image, boxes, keep=None):
    """Pixelate each box of ``image`` (with its margin) into blocks, in place; returns ``image``.

    The box ``keep``, if given, stays clear even where a neighbour's margin covers it: the box itself, not
    its margin, which can hold much of a neighbour's face in a crowd.
    """
    height, width = image.shape[:2]
    if keep is not None:
        x1, y1, x2, y2 = grown(keep, 0.0, width, height)
        kept = image[y1:y2, x1:x2].copy()
    for box in boxes:
        x1, y1, x2, y2 = grown(box, MARGIN, width, height)
        if x2 <= x1 or y2 <= y1:
            continue
        region = image[y1:y2, x1:x2]
        blocks = int(min(BLOCKS, max(1, max(x2 - x1, y2 - y1) // LEAST_BLOCK)))
        small = cv2.resize(region, (blocks, blocks), interpolation=cv2.INTER_AREA)
        region[:] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    if keep is not None:
        x1, y1, x2, y2 = grown(keep, 0.0, width, height)
        image[y1:y2, x1:x2] = kept
    return image


def hides_faces(mode):
    """Whether pictures written or shown in ``mode`` have their faces pixelated."""
    return mode in ("blur", "stats")


def refuse_pictures(mode, spell=as_flag, **pictures):
    """Raise a one-line UserError when ``mode`` is stats and a picture output is asked for.

    ``pictures`` are the outputs by setting name (output="x.mp4", snapshots=None, ...): any given is refused;
    ``spell`` writes a setting's name as the user wrote it (a flag; a site file's key with ``str``).
    """
    asked = [spell(name) for name, value in pictures.items() if value]
    if mode == "stats" and asked:
        raise UserError(f"{spell('privacy')} stats writes no pictures; drop {' and '.join(asked)} "
                        f"(or use {spell('privacy')} blur for pictures with the faces pixelated)")


class OwnFiles:
    """The files this project wrote in ``folder``, recorded there, and deleted after ``keep_days``.

    Only recorded files are ever deleted, and only while they are still as
    written (the same bytes, by sha256): a user's file, whatever its name, size
    or age, is never touched.
    ``keep_days`` None keeps everything; the record is kept all the same.
    """

    def __init__(self, folder, keep_days=None):
        self.folder = Path(folder)
        self.keep_days = keep_days
        self.record = self.folder / RECORD_NAME
        self._lock = threading.Lock()  # clips are finished on threads of their own
        self._last_sweep = None

    def add(self, path):
        """Record a file just written here (its name, size and sha256)."""
        path = Path(path)
        line = json.dumps({"file": path.name, "size": path.stat().st_size, "sha256": sha256_of(path),
                           "written": round(time.time(), 3)})
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.record, "a", encoding="utf-8") as record:
                record.write(line + "\n")

    def _entries(self):
        """(file name, size, sha256 or None, the record's line) of each file recorded."""
        try:
            lines = self.record.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
                entries.append((str(entry["file"]), int(entry["size"]), entry.get("sha256"), line))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: that file stays, unrecorded
        return entries

    def sweep(self, now=None):
        """Delete the recorded files older than keep_days (by their time on disk); the names deleted.

        The record then keeps only the files still there and still ours.
        """
        if self.keep_days is None:
            return []
        now = time.time() if now is None else now
        self._last_sweep = now
        oldest = now - self.keep_days * 86400
        deleted, kept = [], {}
        with self._lock:
            for name, size, digest, line in self._entries():
                path = self.folder / name
                if Path(name).name != name or path.is_symlink() or not path.is_file():
                    continue  # gone, or not a plain file of this folder: forgotten
                stat = path.stat()
                if stat.st_size != size:
                    continue  # replaced since: no longer ours
                if stat.st_mtime < oldest:
                    # Only now, for a file about to go: a file replaced by one of the same size is not ours.
                    if digest and sha256_of(path) != digest:
                        continue
                    path.unlink()
                    deleted.append(name)
                else:
                    kept[name] = line  # the last line of a file written twice under one name
            if self.record.exists():
                write_bytes_atomically("".join(line + "\n" for line in kept.values()).encode(), self.record)
        return deleted

    def sweep_when_due(self, now=None):
        """sweep at most once an hour: the live loop calls it every frame."""
        now = time.time() if now is None else now
        if self.keep_days is not None and (self._last_sweep is None or now - self._last_sweep >= SWEEP_EVERY_SECONDS):
            return self.sweep(now)
        return []


def check_keep_days(keep_days, spell=as_flag, **folders):
    """Keeping days needs a folder whose files it keeps: one line when none is given (``spell``: refuse_pictures)."""
    if keep_days is not None and not any(folders.values()):
        names = " or ".join(spell(name) for name in folders)
        raise UserError(f"{spell('keep_days')} deletes old snapshots and clips: give {names} too")
    return keep_days
