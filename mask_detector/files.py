"""Reading and writing files: images, JSON and whole files written atomically.

Light on purpose: OpenCV, numpy and Pillow only, never TensorFlow, so any
script can write its outputs without loading a deep-learning runtime.
"""

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import sys
import unicodedata
from pathlib import Path

import cv2
import numpy as np

from mask_detector.errors import UserError, write_failure

# Image files a folder run picks up and training reads. Training decodes with
# TensorFlow, which refuses some of these (WebP, TIFF): it says so per file.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# The largest photo read, checked from the file's header before it is decoded: 200
# megapixels, the largest camera photos. Decoded, it takes 600 MB; --max-pixels raises it.
DEFAULT_MAX_PIXELS = 200_000_000


def partial_path(path):
    """The temporary name beside ``path`` a file is written under before it is renamed into place.

    Each process has its own, so two runs writing the same file never write
    into each other's; the suffix is kept, in lower case, since some writers
    choose the format by it.
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix.lower()}")


@contextlib.contextmanager
def atomic_path(path, keep_on_interrupt=False):
    """Yield a temporary name beside ``path``; rename it to ``path`` if the block succeeds.

    Whoever reads ``path`` sees the old file or the whole new one, never a
    half-written one; on failure the temporary file is removed, and so the
    old file is kept (see partial_path for the temporary name).
    ``keep_on_interrupt`` keeps what was written when Ctrl-C stops the block.

    A symbolic link is written through, to the file it names; what is no
    regular file (a device such as /dev/stdout, a FIFO) is written to as it
    is, since renaming over it would replace it.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        yield path
        return
    path = Path(os.path.realpath(path))
    temporary = partial_path(path)
    try:
        yield temporary
    except KeyboardInterrupt:
        if keep_on_interrupt:
            os.replace(temporary, path)
        raise
    else:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(data, path):
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            temporary.write_bytes(data)
    except OSError as error:
        raise UserError(write_failure(path, error)) from None


def write_json_atomically(data, path):
    write_bytes_atomically((json.dumps(data, indent=2) + "\n").encode(), path)


def check_writable(path):
    """Fail before the work, not after, if ``path`` cannot be written."""
    if Path(path).exists() and not Path(path).is_file():  # a device or a FIFO: nothing to create beside it
        if not os.access(path, os.W_OK):
            raise UserError(f"cannot write to {path}: permission denied")
        return
    folder = Path(path).parent
    in_the_way = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way:
        raise UserError(f"cannot write to {folder}: {'it' if in_the_way == folder else in_the_way} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to {folder}: {error.strerror or error}") from None


def what_is_there(path):
    """What stands at ``path`` when it is neither a regular file nor a folder, as a phrase."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f"is a broken symbolic link (to {os.readlink(path)})"
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return "does not exist" if error.errno == errno.ENOENT else f"cannot be read ({error.strerror})"
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"is {kind}, not a file"


def walk_folder(folder, recursive=True):
    """The entries below ``folder``: (files, others, sub-folders not searched), each sorted.

    ``others`` holds (path, what it is) for entries that are no regular file:
    broken links, FIFOs, folders reached twice. Symbolic links to folders
    are followed, each real folder once, so a link back up the tree cannot
    loop. Hidden entries (".name", such as partial files) are left out.
    """
    files, others, not_searched, seen = [], [], [], set()

    def visit(directory):
        seen.add(os.path.realpath(directory))
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            others.append((Path(directory), f"cannot be read ({error.strerror})"))
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue
            if entry.is_file():
                files.append(path)
            elif not entry.is_dir():
                others.append((path, what_is_there(path)))
            elif not recursive:
                not_searched.append(path)
            elif os.path.realpath(path) in seen:
                others.append((path, "leads to a folder already searched"))
            else:
                visit(path)

    visit(folder)
    return sorted(files), sorted(others), sorted(not_searched)


def check_image_header(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Refuse a file that is no image, or an image of more than ``max_pixels``, from its header alone."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # the limit is ours, told in our words
    try:
        if Path(path).stat().st_size == 0:
            raise UserError(f"{path} is empty")
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, ValueError, EOFError, SyntaxError):  # what Pillow raises for headers it refuses
        raise UserError(f"{path} is not an image file") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if width * height > max_pixels:
        raise UserError(
            f"{path} is {width}x{height} = {width * height} pixels, more than the limit of {max_pixels}; "
            f"raise it with --max-pixels"
        )


def is_still_image(path):
    """Whether the file at ``path`` is a picture OpenCV decodes as an image (told by its first bytes)."""
    try:
        return Path(path).is_file() and cv2.haveImageReader(str(path))
    except cv2.error:
        return False


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Read an image file as 8-bit BGR, whatever its depth, channels or orientation.

    The header is checked first, so that neither a huge image nor a huge
    file that is no image is loaded. Reads through numpy so that paths with
    any characters work on every platform; EXIF orientation is applied,
    alpha is dropped, grey becomes BGR.
    """
    path = Path(path)
    check_image_header(path, max_pixels)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise UserError(f"{path} is not an image OpenCV can read")
    return image


def write_image(path, image):
    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix.lower() or ".jpg", image)
    if not ok:
        raise UserError(f"cannot encode an image as {path.suffix}")
    write_bytes_atomically(encoded.tobytes(), path)


def path_text(path):
    """A path as text that is valid Unicode, for JSON and messages.

    A file name is bytes; those that are not UTF-8 (an old archive's Latin-1
    names) would be lone surrogates in a Python string, which JSON readers
    other than Python's refuse. They are written as \\xHH instead, which
    path_from_text reads back.
    """
    return valid_text(os.fspath(path))


def valid_text(text):
    """``text`` with lone surrogates (undecodable bytes of a file name) written as \\xHH."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def path_from_text(text):
    """The path that path_text wrote as ``text``."""
    data = re.sub(rb"\\x([0-9a-f]{2})", lambda match: bytes.fromhex(match[1].decode()), text.encode("utf-8"))
    return os.fsdecode(data)


def _valid_record(value):
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_text(key): _valid_record(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_valid_record(item) for item in value]
    return value


def _write_all(descriptor, data):
    while data:
        data = data[os.write(descriptor, data):]


def _ends_without_newline(path):
    """Whether a regular file at ``path`` has text whose last line is cut (no newline at its end)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as existing:
        existing.seek(-1, os.SEEK_END)
        return existing.read(1) != b"\n"


class JsonLines:
    """One JSON object a line, to a file or to standard output (path "-"); use as a context manager.

    A file is written under a temporary name and renamed when the run ends,
    so a reader, or another run writing the same file, never sees a
    half-written or mixed file, and a failed run leaves the old file as it
    was. Ctrl-C still keeps every finished line. Standard output gets each
    line in one write, with nothing left in a buffer.

    ``streaming`` appends to the file instead, each line whole and at once,
    for a run that may never end (a camera), whose lines are read while it
    goes on: an earlier run's lines are kept before the new ones, never
    emptied, and nothing is opened until the object is made, so make it
    only once the run is sure to start.

    ``earlier`` is text written first: the lines of an earlier run that a
    resumed run keeps, so the file is rewritten whole, never appended to in place.
    """

    def __init__(self, path, streaming=False, earlier=""):
        self.path = path
        self.to_stdout = path == "-"
        self._file = None
        self._stack = contextlib.ExitStack()
        if path and not self.to_stdout:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                target = path if streaming else self._stack.enter_context(atomic_path(path, keep_on_interrupt=True))
                # surrogateescape: an earlier line that is not UTF-8 keeps its bytes (photos.resume reads it so)
                self._file = self._stack.enter_context(
                    open(target, "a" if streaming else "w", encoding="utf-8", errors="surrogateescape"))
                if streaming and _ends_without_newline(path):
                    # A run killed in the middle of a line left it cut: the next line starts on its own.
                    self._file.write("\n")
                self._file.write(earlier)
            except OSError as error:
                self._stack.close()
                raise UserError(write_failure(path, error)) from None

    def write(self, record):
        line = json.dumps(_valid_record(record)) + "\n"
        try:
            if self.to_stdout:
                sys.stdout.flush()
                _write_all(sys.stdout.fileno(), line.encode())
            elif self._file is not None:
                self._file.write(line)
                self._file.flush()  # a full disk is told at this line, not at the end
        except OSError as error:
            raise UserError(write_failure("standard output" if self.to_stdout else self.path, error)) from None

    def close(self):
        self.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            return self._stack.__exit__(*exc)
        except OSError as error:
            raise UserError(write_failure(self.path, error)) from None


def safe_name(text):
    """``text`` fit for a file name or an MQTT topic: accents dropped (Café: Cafe), anything but letters, digits,
    '-' and '_' made a '-'."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_-]+", "-", ascii_text).strip("-") or "camera"


def sha256_of(path):
    """The sha256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
