"""Training data: find the images, split them without leaks, cut their faces and serve them with tf.data.

A dataset folder holds ``with_mask/`` and ``without_mask/`` (and, for a
three-class model, ``incorrect_mask/``), or holds several such folders
(``dataset/observations``, ``dataset/chandrikadeb7``), which are then merged.
A dataset made from other photos (make_masked_faces.py) lists each image's
source in ``sources.jsonl``; the split keeps an image on the side of its source.
"""

import contextlib
import hashlib
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mask_detector.errors import UserError
from mask_detector.files import IMAGE_SUFFIXES, read_image, sha256_of, walk_folder, write_bytes_atomically
from mask_detector.labels import CLASS_NAMES, FOLDERS, LABEL_OF_NAME, THREE_CLASS_NAMES

# Folder names on disk, and the class (an index into THREE_CLASS_NAMES) each holds.
CLASS_FOLDERS = {name: THREE_CLASS_NAMES.index(label) for name, label in LABEL_OF_NAME.items()}
# Each class's folder name in messages, by class index.
FOLDER_OF = tuple(FOLDERS[label] for label in THREE_CLASS_NAMES)
EXPECTED = "with_mask and without_mask (and incorrect_mask for three classes)"
# The share of each class's distinct images kept out of training to test, and to validate.
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


@dataclass
class ImageList:
    """Images with their labels (index into THREE_CLASS_NAMES), content hashes and source groups."""

    paths: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    hashes: list = field(default_factory=list)
    groups: list = field(default_factory=list)  # the sha256 of the photo an image was made from, or its own
    # The face's box as the face detector gives it at run time, (top, left, height, width) in
    # pixels, or None for the whole image (no single face found, or not looked for).
    face_boxes: list = field(default_factory=list)
    # YuNet's five landmarks of that face, (5, 2) pixels, or None: what an aligned crop is warped by.
    landmarks: list = field(default_factory=list)
    # The pose a synthetic face was drawn at ({"yaw", "pitch", "roll"}, its sources.jsonl), or None.
    drawn_poses: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (path, reason)

    @property
    def class_names(self):
        """Two classes, or three when any image shows a mask worn wrongly."""
        return THREE_CLASS_NAMES if 2 in self.labels else CLASS_NAMES

    def counts(self):
        tally = Counter(self.labels)
        return {name: tally.get(i, 0) for i, name in enumerate(self.class_names)}

    def subset(self, indices):
        return ImageList(
            [self.paths[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.hashes[i] for i in indices],
            [self.groups[i] for i in indices],
            [self.face_boxes[i] for i in indices] if self.face_boxes else [],
            [self.landmarks[i] for i in indices] if self.landmarks else [],
            [self.drawn_poses[i] for i in indices] if self.drawn_poses else [],
        )

    def poses(self):
        """Each face's pose.Pose: the one it was drawn at, else the one its landmarks give, else None."""
        from mask_detector.pose import Pose, estimate_pose

        drawn = self.drawn_poses or [None] * len(self.paths)
        landmarks = self.landmarks or [None] * len(self.paths)
        return [Pose(**pose) if pose else None if points is None else estimate_pose(points)
                for pose, points in zip(drawn, landmarks)]


def least_images_per_class(test_fraction=TEST_FRACTION, validation_fraction=VALIDATION_FRACTION):
    """The fewest distinct images of a class that give the test and the validation split one each."""
    return math.ceil(round(1 / min(test_fraction, validation_fraction), 6))


def _is_dataset(folder):
    return any((folder / name).is_dir() for name in CLASS_FOLDERS)


def _dataset_roots(folder, report):
    """The folders below ``folder`` (itself included) that hold the class folders; says what else it ignores."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"dataset folder {folder} does not exist")
    if _is_dataset(folder):
        return [folder]
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    roots = [p for p in subfolders if _is_dataset(p)]
    if not roots:
        raise UserError(
            f"dataset folder {folder} has no class folders: expected {EXPECTED}"
            + (f", found {', '.join(p.name for p in subfolders[:5])}" if subfolders else ", found no sub-folders")
        )
    ignored = [p.name + "/" for p in subfolders if p not in roots]
    if ignored:
        report(f"note: {folder}: ignoring {', '.join(ignored)} (no {' or '.join(FOLDER_OF)} inside)")
    return roots


def _class_folders(root, report):
    """The class folders of one dataset folder, [(label, folder)]; says which are used and which ignored."""
    used = [(label, root / name) for name, label in CLASS_FOLDERS.items() if (root / name).is_dir()]
    others = sorted(p.name + "/" for p in root.iterdir()
                    if p.is_dir() and p.name not in CLASS_FOLDERS and not p.name.startswith("."))
    report(f"{root}: using {', '.join(f'{folder.name}/' for _, folder in used)}"
         + (f"; ignoring {', '.join(others)} (not a class: expected {EXPECTED})" if others else ""))
    return used


def _check_image(path):
    """(None, sha256 of the file) when ``path`` holds an image training can read, else (reason, None).

    Read as the photo and live scripts read images (files.read_image: any
    format OpenCV reads, EXIF orientation applied), so training sees a face
    as it is seen at run time, and a file that reads here reads in training.
    """
    try:
        if path.stat().st_size == 0:
            return "empty file", None
        read_image(path)
        return None, sha256_of(path)
    except OSError as error:
        return f"cannot read ({error.strerror})", None
    except UserError as error:
        return str(error).removeprefix(f"{path} ").removeprefix(f"{path}: "), None


def read_rgb(path):
    """An image file as training reads it, 8-bit RGB: files.read_image, then from BGR (tf.data calls this)."""
    return np.ascontiguousarray(read_image(os.fsdecode(path))[..., ::-1])


def _sources(root):
    """{image path: (sha256 of its source photo, the pose it was drawn at or None)} from the dataset's
    sources.jsonl, if it has one."""
    listing = root / "sources.jsonl"
    if not listing.is_file():
        return {}
    try:
        entries = [json.loads(line) for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {str(root / entry["image"]): (entry["source"], _drawn_pose(entry.get("pose"))) for entry in entries}
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{listing} is not a list of {{\"image\", \"source\"}} lines: {error}") from None


def _drawn_pose(pose):
    return None if pose is None else {name: float(pose[name]) for name in ("yaw", "pitch", "roll")}


def find_images(folders, report=print):
    """List every image of every dataset folder; unreadable files are skipped with a warning."""
    images = ImageList()
    for folder in folders:
        for root in _dataset_roots(folder, report):
            sources = _sources(root)
            for label, class_dir in _class_folders(root, report):
                # Sub-folders count, also through symbolic links; what is no file is said and skipped.
                files, others, _ = walk_folder(class_dir)
                for path, what in others:
                    report(f"warning: skipping {path}: it {what}")
                    images.skipped.append((str(path), what))
                for path in files:
                    reason, digest = _check_image(path)
                    if reason is None and path.suffix.lower() not in IMAGE_SUFFIXES:
                        reason = f"unexpected file type {path.suffix or '(none)'}"
                    if reason:
                        report(f"warning: skipping {path}: {reason}")
                        images.skipped.append((str(path), reason))
                        continue
                    images.paths.append(str(path))
                    images.labels.append(label)
                    images.hashes.append(digest)
                    source, pose = sources.get(str(path), (digest, None))
                    images.groups.append(source)
                    images.drawn_poses.append(pose)
    counts = images.counts()
    missing = [FOLDER_OF[i] for i, name in enumerate(images.class_names) if counts[name] == 0]
    if missing:
        raise UserError(
            f"no usable images in {', '.join(missing)} of {', '.join(map(str, folders))}; "
            f"a dataset needs both {FOLDER_OF[0]}/ and {FOLDER_OF[1]}/"
        )
    return images


def limit_per_class(images, most, seed):
    """At most ``most`` distinct images of each class, picked at random but repeatably.

    Copies of one file count once: the split keeps one copy of each, so
    copies picked here would leave a class short of what was asked.
    """
    rng = np.random.default_rng(seed)
    first = {}
    for index, (digest, label) in enumerate(zip(images.hashes, images.labels)):
        first.setdefault((digest, label), index)
    keep = []
    for label in sorted(set(images.labels)):
        members = [index for (digest, kind), index in first.items() if kind == label]
        keep += sorted(rng.permutation(members)[:most].tolist())
    return images.subset(keep)


def split_without_leaks(images, test_fraction=TEST_FRACTION, validation_fraction=VALIDATION_FRACTION, seed=42):
    """Split into train, validation and test so that nothing of one side is seen on another.

    Exact duplicates (same sha256) would otherwise land on both sides and
    inflate the test figures: each unique content is kept once, and a content
    that appears under two labels is dropped as ambiguous. Images made from
    one photo (its group) go to the side of that photo, all together.
    """
    from sklearn.model_selection import train_test_split

    label_of = {}
    first_index = {}
    for index, (digest, label) in enumerate(zip(images.hashes, images.labels)):
        if digest in label_of and label_of[digest] != label:
            label_of[digest] = None  # contradictory duplicate
        else:
            label_of.setdefault(digest, label)
            first_index.setdefault(digest, index)
    unique = [first_index[d] for d, label in label_of.items() if label is not None]
    stats = {
        "images": len(images.paths),
        "unique": len(unique),
        "duplicates_dropped": len(images.paths) - len(unique),
    }
    per_class = Counter(images.labels[i] for i in unique)
    _check_enough({label: per_class[label] for label in range(len(images.class_names))}, test_fraction,
                  validation_fraction)
    members = {}
    for index in unique:
        members.setdefault(images.groups[index], []).append(index)
    groups = list(members)
    # Stratified by each group's first image: the photo itself, for a group made from one.
    group_labels = [images.labels[members[g][0]] for g in groups]
    rest, test = train_test_split(groups, test_size=test_fraction, stratify=group_labels, random_state=seed)
    rest_labels = [images.labels[members[g][0]] for g in rest]
    train, validation = train_test_split(
        rest, test_size=validation_fraction / (1 - test_fraction), stratify=rest_labels, random_state=seed
    )
    return tuple(images.subset(sorted(i for g in side for i in members[g])) for side in (train, validation, test)) + (
        stats,)


def _check_enough(per_class, test_fraction, validation_fraction):
    needed = least_images_per_class(test_fraction, validation_fraction)
    short = [f"{FOLDER_OF[label]}/ has {per_class[label]}" for label in sorted(per_class)
             if per_class[label] < needed]
    if short:
        raise UserError(
            f"too few images to train: {' and '.join(short)}; training needs at least {needed} distinct images "
            f"per class, so that the test split ({test_fraction:.0%}) and the validation split "
            f"({validation_fraction:.0%}) each hold one"
        )


def default_face_cache():
    """The folder located faces are kept in between runs: the user's cache (XDG_CACHE_HOME, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mask-detector" / "faces"


class FaceCache:
    """The faces located in training images, kept by each image's sha256, so that the next run on the same images
    (another design, another seed) does not run the face detector again: it was the slowest part of reading a
    dataset. One file per face detector and rule: its name holds a hash of the detector's weights, its settings
    and RULE, so that a change to any of them starts a file of its own."""

    # Raise when locate_faces or faces_in_crop changes what they give for an image.
    RULE = 1

    def __init__(self, folder, detector_path, detector_settings):
        key = hashlib.sha256(f"{sha256_of(detector_path)} {detector_settings} {self.RULE}".encode()).hexdigest()
        self.path = Path(folder) / f"faces-{key[:16]}.jsonl"
        self.faces = {}  # image sha256 -> (box (top, left, height, width) or None, landmarks as lists or None)
        self.added = 0
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
                self.faces[entry["sha256"]] = (entry["box"], entry["landmarks"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short or edited by hand: that image is located again

    def get(self, digest):
        """(box, landmarks) of the image of sha256 ``digest``, or None when it was never located."""
        return self.faces.get(digest)

    def put(self, digest, box, landmarks):
        self.faces[digest] = (box, landmarks)
        self.added += 1

    def save(self):
        """Write the whole file anew, under a temporary name first: a run stopped halfway leaves the last one.
        Returns why it could not be written, or None: a cache that cannot be kept never stops training."""
        if not self.added:
            return None
        lines = [json.dumps({"sha256": digest, "box": box, "landmarks": landmarks})
                 for digest, (box, landmarks) in self.faces.items()]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(("\n".join(lines) + "\n").encode(), self.path)
        except OSError as error:
            return error.strerror or str(error)
        return None


def locate_faces(images, report=print, cache_folder=None):
    """Set each image's face box: the box YuNet gives at run time, which the classifier is trained on.

    Training crops come framed by whoever made the dataset, some tight, some
    with the face filling 60 % of the side; at run time the classifier sees
    YuNet's box, forehead included. Cutting every image as YuNet does trains
    it on what it will see. An image with no face, or several, is kept whole.
    With ``cache_folder``, the faces of images located by an earlier run are
    taken from its FaceCache, and those located now are added to it.
    """
    from mask_detector.faces import CROP_DETECT_SIZE, FACE_DETECTOR_DIR, YuNetDetector, faces_in_crop

    started = time.perf_counter()
    # 320 px: training images are face crops, whose faces stay large in a 320 px copy; it is fast.
    detector = YuNetDetector(detect_size=CROP_DETECT_SIZE)
    cache = None
    if cache_folder:
        cache = FaceCache(cache_folder, Path(FACE_DETECTOR_DIR) / "face_detection_yunet_2023mar.onnx",
                          f"detect_size={detector.detect_size} confidence={detector.confidence} "
                          f"single_scale={detector.single_scale}")
    images.face_boxes, images.landmarks = [], []
    # Without a content hash for every image (a list made by hand), nothing is cached.
    digests = images.hashes if len(images.hashes) == len(images.paths) else [None] * len(images.paths)
    taken = 0  # images whose faces came from the cache
    for path, digest in zip(images.paths, digests):
        known = cache.get(digest) if cache and digest else None
        taken += known is not None
        if known is None:
            try:
                image = read_image(path)  # as training reads it: EXIF orientation applied, as at run time
            except UserError:
                image = None
            faces = [] if image is None else faces_in_crop(detector, image)
            if len(faces) == 1:
                x1, y1, x2, y2 = faces[0].box
                points = None if faces[0].landmarks is None else np.asarray(faces[0].landmarks, np.float32).tolist()
                known = ((y1, x1, y2 - y1, x2 - x1), points)
            else:
                known = (None, None)
            if cache and digest and image is not None:  # an unreadable file is tried again next time
                cache.put(digest, *known)
        box, landmarks = known
        images.face_boxes.append(None if box is None else tuple(box))
        images.landmarks.append(None if landmarks is None else np.asarray(landmarks, np.float32))
    if cache:
        problem = cache.save()
        if problem:
            report(f"warning: the located faces were not kept in {cache.path}: {problem}")
    located = sum(box is not None for box in images.face_boxes)
    report(f"faces located as the face detector finds them at run time: {located} of {len(images.paths)} images "
           f"(the rest, with no single face found, are kept whole) in {time.perf_counter() - started:.1f} s"
           + (f", {taken} of them from the cache {cache.path}" if cache else ""))
    return images


def load_split(folders, max_per_class=0, seed=42, report=print, locate=True, face_cache=None, step=None):
    """Find the images, cap each class if asked, locate their faces, split without leaks; say what was found.

    Returns the counts the model card keeps, and the train, validation and
    test ImageLists. ``face_cache``: the folder of the FaceCache, or None to locate every face anew. ``step``,
    if given, times each step: called with its name, it gives a context manager (training.StepTimes.step).
    """
    step = step or (lambda name: contextlib.nullcontext())
    with step("find images"):
        images = find_images(folders)
        skipped = len(images.skipped)
        if max_per_class:
            images = limit_per_class(images, max_per_class, seed)
    if locate:
        with step("locate faces"):
            locate_faces(images, report, face_cache)
    train, validation, test, stats = split_without_leaks(images, seed=seed)
    report(
        f"images: {stats['images']} usable ({images.counts()}), {skipped} skipped, "
        f"{stats['duplicates_dropped']} duplicate copies dropped; "
        f"split train {len(train.paths)} / validation {len(validation.paths)} / test {len(test.paths)}"
    )
    counts = {
        "usable": stats["images"],
        "skipped_unreadable": skipped,
        "duplicate_copies_dropped": stats["duplicates_dropped"],
        "train": len(train.paths),
        "validation": len(validation.paths),
        "test": len(test.paths),
        "faces_located": sum(box is not None for box in images.face_boxes),
    }
    return counts, (train, validation, test)


# The classic recipe's augmentation: rotation up to 20 degrees, shifts of up to 20 % of
# the side, zoom by up to 15 %, shear up to 0.15, and horizontal flips.
ROTATION_DEGREES = 20
SHIFT = 0.2
ZOOM = 0.15
SHEAR = 0.15


def random_affine(batch):
    """Rotate, shift, zoom, shear and flip each image of a batch at random, in one warp.

    The five changes compose into one affine matrix per image, so each image
    is resampled once: the same augmentation as five Keras preprocessing
    layers (RandomRotation, RandomTranslation, RandomZoom, RandomShear,
    RandomFlip) in about a quarter of the time, which on a small CPU is most
    of an epoch. Edges are filled by repeating the nearest pixel.
    """
    import math

    import tensorflow as tf

    count = tf.shape(batch)[0]
    height = tf.cast(tf.shape(batch)[1], tf.float32)
    width = tf.cast(tf.shape(batch)[2], tf.float32)

    def uniform(limit):
        return tf.random.uniform([count], -limit, limit)

    angle = uniform(ROTATION_DEGREES * math.pi / 180)
    zoom = 1.0 + uniform(ZOOM)
    shear_x, shear_y = uniform(SHEAR), uniform(SHEAR)
    flip = tf.where(tf.random.uniform([count]) < 0.5, -1.0, 1.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # matrix = rotation @ shear @ zoom @ flip, mapping output pixels (about the centre) to input pixels.
    a00 = (cos - sin * shear_y) * zoom * flip
    a01 = (cos * shear_x - sin) * zoom
    a10 = (sin + cos * shear_y) * zoom * flip
    a11 = (sin * shear_x + cos) * zoom
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    shift_x, shift_y = uniform(SHIFT) * width, uniform(SHIFT) * height
    offset_x = centre_x - a00 * centre_x - a01 * centre_y + shift_x
    offset_y = centre_y - a10 * centre_x - a11 * centre_y + shift_y
    zeros = tf.zeros([count])
    transforms = tf.stack([a00, a01, offset_x, a10, a11, offset_y, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=batch, transforms=transforms, output_shape=tf.shape(batch)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST",
    )


def small_face(image, size, smallest=12, largest=48):
    """One image as a face of 12-48 pixels in a street photo looks once enlarged for the classifier.

    Most faces in street photos are 16-40 pixels wide, blurred by the
    camera and blocky from JPEG; the training crops are large and sharp. The
    image is shrunk, saved as a low-quality JPEG and enlarged back.
    """
    import tensorflow as tf

    target = tf.random.uniform([], smallest, largest + 1, dtype=tf.int32)
    small = tf.image.resize(image, [target, target], antialias=True)
    small = tf.image.adjust_jpeg_quality(_as_uint8(small), tf.random.uniform([], 30, 90, dtype=tf.int32))
    return tf.image.resize(tf.cast(small, tf.float32), [size, size])


def _as_uint8(image):
    """A float 0-255 image rounded to the nearest uint8, as a photo's pixels are."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def shrunk_face(image, side, size, quality=75):
    """An image as a face of ``side`` pixels looks once enlarged for the classifier: shrunk, saved as a
    JPEG, enlarged back. The fixed counterpart of small_face, to measure the model at one face size."""
    import tensorflow as tf

    small = tf.image.resize(image, [side, side], antialias=True)
    small = tf.image.adjust_jpeg_quality(_as_uint8(small), quality)
    return tf.image.resize(tf.cast(small, tf.float32), [size, size])


def warp_parameters(images, image_size):
    """Per image, what tf.data needs to warp its face onto the aligned template (classifier.align_faces):
    the crop-to-image affine map (6 numbers), the shrink applied first (as at run time, so a large face
    is not aliased), and 1 where there are landmarks (0: the face is cut at its box instead)."""
    import cv2

    from mask_detector.classifier import alignment_matrix

    rows = []
    for points in images.landmarks or [None] * len(images.paths):
        matrix = None if points is None else alignment_matrix(points, image_size)
        if matrix is None:
            rows.append([0.0] * 7 + [0.0])
            continue
        scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
        rows.append(list(cv2.invertAffineTransform(matrix).reshape(-1)) + [min(1.0, 2 * scale), 1.0])
    return np.asarray(rows, dtype=np.float32)


def make_dataset(images, image_size, batch_size=32, training=False, seed=42, face_side=0, aligned=False):
    """A tf.data pipeline of (float 0-255 RGB batch, label batch), read from disk as it goes.

    Nothing is held in memory beyond a few batches, so memory does not grow
    with the number of images: for a split read once (the test split, a
    calibration sample). ``face_side`` (not in training) shows every
    face as if it were that many pixels wide in a photo (0: as it is).
    ``aligned`` warps each face by its landmarks as classifier.align_faces
    does at run time; images without landmarks are cut at their face box.
    A split read many times is read once into face_crops and served by crop_batches.
    """
    dataset = _read_faces(images, image_size, aligned, shuffle_seed=seed if training else None)
    return _as_batches(dataset, image_size, batch_size, training, face_side)


def face_crops(images, image_size, aligned=False, batch_size=64):
    """Every image read once and cut to its face (aligned, or at its box), as make_dataset cuts it:
    uint8 (n, size, size, 3), in the order of ``images``.

    Reading and warping a photo costs as much as a training step on it; held
    as crops, a split is read once for all its epochs and calibration's face
    sizes (a 160 px crop is 77 kB: 10,000 images take 0.8 GB).
    """
    import tensorflow as tf

    crops = np.empty((len(images.paths), image_size, image_size, 3), np.uint8)
    dataset = _read_faces(images, image_size, aligned).map(lambda image, label: _as_uint8(image),
                                                           num_parallel_calls=tf.data.AUTOTUNE)
    done = 0
    for batch in dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE):
        crops[done:done + len(batch)] = batch.numpy()
        done += len(batch)
    return crops


def crop_batches(crops, labels=None, batch_size=32, training=False, seed=42, face_side=0):
    """make_dataset's pipeline over face crops held in memory (face_crops): (float 0-255 batch, label batch).

    With ``training``, shuffled and augmented anew each epoch; ``face_side``
    as make_dataset. The crops are taken by index, so they are not copied into
    the pipeline (tf.data would hold a second copy of an array it is given).
    """
    import tensorflow as tf

    labels = tf.constant(np.zeros(len(crops)) if labels is None else labels, dtype=tf.int32)

    def crop(index):
        image = tf.numpy_function(lambda i: crops[i], [index], tf.uint8, stateful=False)
        image.set_shape(crops.shape[1:])
        return tf.cast(image, tf.float32), tf.gather(labels, index)

    dataset = tf.data.Dataset.range(len(crops))
    if training:
        dataset = dataset.shuffle(len(crops), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    return _as_batches(dataset, crops.shape[1], batch_size, training, face_side)


def _read_faces(images, image_size, aligned, shuffle_seed=None):
    """(float 0-255 face crop, label) per image, read from disk, cut or aligned; shuffled when given a seed."""
    import tensorflow as tf

    def align(image, warp):
        # The image is shrunk first (antialiased) when the face is large; the map then reads the
        # shrunk image, whose pixel centres sit at shrink * (x + 0.5) - 0.5.
        shrink = warp[6]
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        size = tf.maximum(1, tf.cast(tf.round(shape * shrink), tf.int32))
        image = tf.image.resize(image, size, antialias=True)
        offset = 0.5 * (shrink - 1.0)
        transform = tf.stack([warp[0] * shrink, warp[1] * shrink, warp[2] * shrink + offset,
                              warp[3] * shrink, warp[4] * shrink, warp[5] * shrink + offset, 0.0, 0.0])
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None], transforms=transform[None], output_shape=[image_size, image_size],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")[0]

    def cut(image, face_box):
        top, left, height, width = tf.unstack(face_box)
        shape = tf.shape(image)
        inside = (height > 0) & (top + height <= shape[0]) & (left + width <= shape[1])
        image = tf.cond(inside, lambda: tf.image.crop_to_bounding_box(image, top, left, height, width), lambda: image)
        return tf.image.resize(image, [image_size, image_size], antialias=True)

    def load(path, face_box, warp, label):
        image = tf.numpy_function(read_rgb, [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        return tf.cond(warp[7] > 0, lambda: align(image, warp), lambda: cut(image, face_box)), label

    paths = tf.constant(images.paths)
    # (top, left, height, width); a height of 0 keeps the whole image.
    face_boxes = tf.constant([box or (0, 0, 0, 0) for box in images.face_boxes or [None] * len(images.paths)],
                             dtype=tf.int32)
    labels = tf.constant(images.labels, dtype=tf.int32)
    warps = tf.constant(warp_parameters(images, image_size) if aligned else [[0.0] * 8] * len(images.paths),
                        dtype=tf.float32)
    dataset = tf.data.Dataset.from_tensor_slices((paths, face_boxes, warps, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(images.paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)


def _as_batches(dataset, image_size, batch_size, training, face_side):
    """Face crops to batches: in training, half the faces as small as the detector meets them and every
    batch warped at random; else each face at ``face_side`` pixels if given."""
    import tensorflow as tf

    def show(image, label):
        if training:
            image = tf.cond(tf.random.uniform([]) < 0.5, lambda: small_face(image, image_size), lambda: image)
        elif face_side:
            image = shrunk_face(image, face_side, image_size)
        return image, label

    dataset = dataset.map(show, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    if training:
        dataset = dataset.map(lambda batch, label: (random_affine(batch), label), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
