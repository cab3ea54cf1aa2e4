"""Reading and writing files: images, JSON and whole files written atomically.

Light on purpose: OpenCV and numpy only, never TensorFlow, so any script can
write its outputs without loading a deep-learning runtime.
"""

import contextlib
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from mask_detector.errors import UserError

# Image files a folder run picks up and training reads. Training decodes with
# TensorFlow, which refuses some of these (WebP, TIFF): it says so per file.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def partial_path(path):
    """The temporary name beside ``path`` a file is written under before it is renamed into place.

    The suffix is kept, since some writers choose the format by it.
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary name beside ``path``; rename it to ``path`` if the block succeeds.

    Whoever reads ``path`` sees the old file or the whole new one, never a
    half-written one; on failure the temporary file is removed.
    """
    temporary = partial_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(data, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_json_atomically(data, path):
    write_bytes_atomically((json.dumps(data, indent=2) + "\n").encode(), path)


def check_writable(path):
    """Fail before the work, not after, if ``path`` cannot be written."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to {folder}: {error.strerror or error}") from None


def read_image(path):
    """Read an image file as 8-bit BGR, whatever its depth, channels or orientation.

    Reads through numpy so that paths with any characters work on every
    platform; EXIF orientation is applied, alpha is dropped, grey becomes BGR.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if data.size == 0:
        raise UserError(f"{path} is empty")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise UserError(f"{path} is not an image OpenCV can read")
    return image


def write_image(path, image):
    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix or ".jpg", image)
    if not ok:
        raise UserError(f"cannot encode an image as {path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            encoded.tofile(temporary)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


class JsonLines:
    """One JSON object a line, to a file or to standard output (path "-"); use as a context manager.

    Each line is flushed as it is written, so an interrupted run keeps every
    finished line.
    """

    def __init__(self, path):
        self.path = path
        self.to_stdout = path == "-"
        self._file = None
        if path and not self.to_stdout:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "w", encoding="utf-8")
            except OSError as error:
                raise UserError(f"cannot write {path}: {error.strerror or error}") from None
        elif self.to_stdout:
            self._file = sys.stdout

    def write(self, record):
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self):
        if self._file is not None and not self.to_stdout:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
