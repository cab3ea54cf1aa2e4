"""The synthetic dataset: what is drawn on each face, written as class folders, or shown in a grid picture.

In each photo with exactly one face, YuNet's five landmarks place a drawn
mask: worn correctly in with_mask/, below the nose, off the mouth or on
the chin in incorrect_mask/, and, for some faces, a hand, phone, cup or
beard over the lower face (not a mask) in without_mask/. sources.jsonl
names each image's source photo and its sha256, so a split can keep every
image made from a face on the same side as that face. The same seed and
photos make the same files. Images written here earlier into the output
are replaced; any other file there stops the run.
"""

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from mask_detector.errors import UserError
from mask_detector.faces import CROP_DETECT_SIZE, YuNetDetector, faces_in_crop
from mask_detector.files import IMAGE_SUFFIXES, read_image, write_bytes_atomically, write_image
from mask_detector.labels import FOLDERS
from mask_detector.synthetic.geometry import INCORRECT_PLACEMENTS, landmark_problem
from mask_detector.synthetic.masks import SHAPES, draw_mask, random_style
from mask_detector.synthetic.negatives import (
    NEGATIVES, choose_fitting, draw_hand, draw_negative, fitting_kinds, skin_colour,
)
from mask_detector.synthetic.head import turn_face
from mask_detector.pose import estimate_pose
from mask_detector.synthetic.views import cut_close_up, tilt_head, upright

SOURCES_FILE = "sources.jsonl"
# What this module names its images: the source's sha256 prefix, what was drawn, a counter.
OWN_IMAGE = re.compile(r"[0-9a-f]{16}_[a-z_]+_\d+\.jpg")
PROGRESS_EVERY = 500
# Of every image drawn, this share shows the face turned (and tilted up or down), this share the head
# tilted far (looking down at a phone, or leaning on one side), and this share cut by the picture's edge:
# real cameras see all three, the source photos almost never. Masks worn right, worn wrongly and none are
# turned alike, so that a turned face is never a sign of any one of them.
TURNED_SHARE = 0.6
TILTED_SHARE = 0.12
CUT_SHARE = 0.12
# Turned faces: the yaw's size is drawn evenly from here (degrees, either way), as the pitch, up or down;
# at 75 degrees one eye is hidden behind the nose, about where YuNet stops finding faces.
YAW_RANGE = (5.0, 75.0)
MOST_PITCH = 25.0
# Tilted heads: looking down this far, or the head leaning this far to one side (roll).
TILT_RANGE = (20.0, 50.0)
# A face whose cheeks are darker than this (0-255 grey) gets a dark mask half of the time: dark
# masks on dark faces were called "no mask" most often.
DARK_SKIN = 100
GRID_TILE = 200
GRID_COLUMNS = 6


@dataclass(frozen=True)
class Settings:
    """What to make: a dataset in ``output``, or with ``grid`` only a picture of what is drawn, written there.

    ``faces`` are folders of photos of unmasked faces, or single photos.
    Each ``per_face_*`` is the average number of images of that kind made
    of each face (a fraction of one makes one for that share of faces).
    """

    faces: tuple
    output: str | None
    grid: str | None
    seed: int
    per_face_correct: float
    per_face_incorrect: float
    per_face_negative: float
    per_face_touched: float
    per_face_turned_bare: float
    max_faces: int | None  # stop after this many faces; None: use every face


def make_masked_faces(settings):
    """Write the dataset, or the grid picture, that ``settings`` ask for, and print what was done."""
    photos = face_photos(settings.faces)
    detector = YuNetDetector(detect_size=CROP_DETECT_SIZE)
    if settings.grid:
        # Quality 85: 60 % of the bytes of the default 95, for a picture that lives in the repository.
        encoded = cv2.imencode(Path(settings.grid).suffix or ".jpg", make_grid(detector, photos, settings.seed),
                               [cv2.IMWRITE_JPEG_QUALITY, 85])[1]
        write_bytes_atomically(encoded.tobytes(), settings.grid)
        print(f"wrote {settings.grid}")
        return
    output = Path(settings.output)
    prepare_output(output, settings.faces)
    started = time.monotonic()
    records, used, skipped, written, not_drawn = draw_dataset(detector, photos, output, settings)
    lines = "".join(json.dumps(record) + "\n" for record in sorted(records, key=lambda r: r["image"]))
    write_bytes_atomically(lines.encode(), output / SOURCES_FILE)
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items())) or "none"
    classes = ", ".join(f"{folder} {written[folder]}" for folder in FOLDERS.values())
    missing = ", ".join(f"{folder} {count}" for folder, count in not_drawn.items()) or "none"
    print(f"{sum(skipped.values()) + used} photos read in {time.monotonic() - started:.0f} s, {used} faces used, "
          f"skipped {sum(skipped.values())} ({reasons}); wrote {len(records)} images ({classes}) to {output}; "
          f"not drawn, as they would fall off the photo: {missing}")
    if not records:
        # A dataset with no image is no dataset: training on it would fail later, and less clearly.
        raise UserError(f"no image written: none of the {sum(skipped.values()) + used} photos gave a face to "
                        f"draw on ({reasons}); give photos of one unmasked face each, looking at the camera")


def face_photos(places):
    """Every image file of the --faces folders (in name order) or the photo given."""
    photos = []
    for place in map(Path, places):
        if place.is_file():
            photos.append(place)
        elif place.is_dir():
            photos += sorted(p for p in place.rglob("*") if p.is_file() and not p.name.startswith(".")
                             and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise UserError(f"--faces {place} does not exist")
    if not photos:
        raise UserError(f"no photos in {', '.join(places)}")
    return photos


def prepare_output(output, places):
    """Refuse an output that overlaps the photos or holds others' files; remove the images written there before."""
    target = output.resolve()
    for place in map(Path, places):
        folder = place.resolve() if place.is_dir() else place.resolve().parent
        if target == folder or folder in target.parents or target in folder.parents:
            raise UserError(f"--output {output} overlaps --faces {place}; write the dataset to a folder of its own")
    if target.is_file():
        raise UserError(f"--output {output} is a file")
    files = [p for p in target.rglob("*") if p.is_file()] if target.is_dir() else []
    own_folders = set(FOLDERS.values())
    foreign = [p for p in files if p.relative_to(target).as_posix() != SOURCES_FILE
               and not (p.parent.parent == target and p.parent.name in own_folders and OWN_IMAGE.fullmatch(p.name))]
    if foreign:
        raise UserError(f"--output {output} holds files this script did not write (such as {foreign[0]}); "
                        "choose a new folder")
    for path in files:
        path.unlink()


def find_landmarks(detector, image):
    """(landmarks, None) of the photo's one face, or (None, why not)."""
    faces = faces_in_crop(detector, image)
    if len(faces) != 1:
        return None, "no face" if not faces else "several faces"
    return faces[0].landmarks, landmark_problem(faces[0].landmarks)


def how_many(expected, rng):
    """An integer count whose average is ``expected``: 0.3 gives 1 for three faces in ten."""
    return int(expected) + int(rng.random() < expected % 1)


def drawings(image, landmarks, rng, settings):
    """(class folder, what is drawn, the image, the pose drawn: other_view) for each image asked of one face.

    The image is None when every choice would fall mostly outside the photo.
    Some images then show the face turned or cut by the edge (other_view).
    """
    # (label, what may be drawn, a hand on it): a hand adjusting a mask leaves it what it was, worn right
    # or wrongly, so hands are on masks of both kinds (and over bare mouths among the negatives).
    plans = ([("mask", ("correct",), False)] * how_many(settings.per_face_correct, rng)
             + [("mask", ("correct",), True)] * how_many(settings.per_face_touched, rng)
             + [("incorrect", INCORRECT_PLACEMENTS, False)] * how_many(settings.per_face_incorrect, rng)
             + [("incorrect", INCORRECT_PLACEMENTS, True)] * how_many(settings.per_face_touched / 2, rng)
             + [("no_mask", NEGATIVES, False)] * how_many(settings.per_face_negative, rng)
             + [("no_mask", ("bare",), False)] * how_many(settings.per_face_turned_bare, rng))
    dark = skin_colour(image, landmarks).mean() < DARK_SKIN
    for label, kinds, touched in plans:
        folder = FOLDERS[label]
        if kinds == ("bare",):
            yield (folder, *other_view(image, landmarks, "bare", rng, always_turn=True))
            continue
        kind = choose_fitting(rng, kinds, image.shape, landmarks)
        if kind is None:
            yield folder, None, None, None
            continue
        if label == "no_mask":
            drawn = draw_negative(image, landmarks, rng, kind)[0]
        else:
            style = random_style(rng, dark=dark and rng.random() < 0.5)
            drawn = draw_mask(image, landmarks, style, kind, rng)
            if touched:
                # A hand adjusting the mask: it lies over the mask, in the colour of the face's skin.
                kind = "touched" if kind == "correct" else f"{kind}_touched"
                drawn = draw_hand(drawn, landmarks, rng, skin=skin_colour(image, landmarks))
        yield (folder, *other_view(drawn, landmarks, kind, rng, plain=image))


def other_view(image, landmarks, kind, rng, always_turn=False, plain=None):
    """(what is drawn, the image, the pose it shows or None where it is the photo's own) with the face
    turned, or the head tilted, or cut by the picture's edge, at random. ``plain``: the photo before
    anything was drawn (head.turn_face)."""
    chance, pose = rng.random(), None
    if (always_turn or chance < TURNED_SHARE) and upright(landmarks):
        yaw, pitch = rng.choice([-1, 1]) * rng.uniform(*YAW_RANGE), rng.uniform(-1, 1) * MOST_PITCH
        pose = {"yaw": yaw, "pitch": pitch, "roll": _own_roll(landmarks)}
        image, landmarks = turn_face(image, landmarks, yaw, pitch, plain)
        kind += "_turned"
    elif chance < TURNED_SHARE + TILTED_SHARE and upright(landmarks):
        angle = rng.uniform(*TILT_RANGE)
        if rng.random() < 0.5:  # looking down, at a phone or a book
            yaw = rng.uniform(-1, 1) * 15.0
            pose = {"yaw": yaw, "pitch": angle, "roll": _own_roll(landmarks)}
            image, landmarks = turn_face(image, landmarks, yaw, angle, plain)
        else:  # leaning to one side
            degrees = rng.choice([-1, 1]) * angle
            own = estimate_pose(landmarks)
            pose = {"yaw": own.yaw, "pitch": own.pitch, "roll": own.roll + degrees} if own else None
            image, landmarks = tilt_head(image, landmarks, degrees)
        kind += "_tilted"
    if rng.random() < CUT_SHARE:
        side = ("top", "left", "right")[rng.integers(3)]
        image, landmarks = cut_close_up(image, landmarks, side, rng.uniform(0.1, 0.3))
        kind += "_cut"
    if pose:
        pose = {name: round(float(value), 1) for name, value in pose.items()}
    return kind, image, pose


def _own_roll(landmarks):
    own = estimate_pose(landmarks)
    return own.roll if own else 0.0


def source_rng(seed, digest):
    """The random generator of one source photo: the same photo gives the same images, whatever else is read."""
    return np.random.default_rng([seed, int(digest[:16], 16)])


def load_face(detector, path):
    """(image, sha256 of the file, landmarks, None), or with the last item saying why the photo cannot be used."""
    try:
        image, digest = read_image(path), hashlib.sha256(path.read_bytes()).hexdigest()
    except (UserError, OSError):
        return None, None, None, "unreadable"
    return (image, digest, *find_landmarks(detector, image))


def draw_dataset(detector, photos, output, settings):
    """Draw and write the images.

    Returns the sources.jsonl records, the faces used, and counts of the photos skipped (by reason), the
    images written and those not drawn (by class).
    """
    records, skipped, written, not_drawn, seen = [], Counter(), Counter(), Counter(), set()
    for number, path in enumerate(photos, 1):
        if number % PROGRESS_EVERY == 0:
            print(f"{number} / {len(photos)} photos, {sum(written.values())} images", flush=True)
        image, digest, landmarks, problem = load_face(detector, path)
        if digest in seen:
            problem = "duplicate"
        if problem:
            skipped[problem] += 1
            continue
        seen.add(digest)
        counters = Counter()
        for folder, kind, drawn, pose in drawings(image, landmarks, source_rng(settings.seed, digest), settings):
            if drawn is None:
                not_drawn[folder] += 1
                continue
            name = f"{folder}/{digest[:16]}_{kind}_{counters[folder]}.jpg"
            counters[folder] += 1
            write_image(output / name, drawn)
            records.append({"image": name, "source": digest, "source_path": str(path)}
                           | ({"pose": pose} if pose else {}))
            written[folder] += 1
        if len(seen) == settings.max_faces:
            break
    return records, len(seen), skipped, written, not_drawn


def make_grid(detector, photos, seed):
    """A labelled picture: each column one face; rows the photo, correct masks, wrong ones, and not-masks."""
    faces = []
    # Spread over the photos; a few spare, for photos without a usable face.
    for index in np.unique(np.linspace(0, len(photos) - 1, GRID_COLUMNS * 4).round().astype(int)):
        image, digest, landmarks, problem = load_face(detector, photos[index])
        if not problem:
            faces.append((image, landmarks, source_rng(seed, digest)))
        if len(faces) == GRID_COLUMNS:
            break
    if not faces:
        raise UserError("no usable face in the photos for a grid")
    rows = {
        "source photo": [],
        f"{FOLDERS['mask']}: one per shape": [],
        f"{FOLDERS['mask']}: random style": [],
        FOLDERS["incorrect"]: [],
        f"{FOLDERS['no_mask']}: hard negatives": [],
        "other views: turned, touched, cut, dark": [],
        "turned in 3-D: mask worn right, from -75 to 75 degrees": [],
    }
    for column, (image, landmarks, rng) in enumerate(faces):
        shaped = replace(random_style(rng), shape=SHAPES[column % len(SHAPES)])
        style = random_style(rng)
        # Each column shows another placement and not-mask, or the next that fits in its photo.
        placement = first_fitting(image, landmarks, INCORRECT_PLACEMENTS, column) or "below_nose"
        negative, kind = draw_negative(image, landmarks, rng, first_fitting(image, landmarks, NEGATIVES, column))
        tiles = [(image, ""), (draw_mask(image, landmarks, shaped, "correct", rng), shaped.shape),
                 (draw_mask(image, landmarks, style, "correct", rng), f"{style.shape} {style.pattern}"),
                 (draw_mask(image, landmarks, style, placement, rng), placement.replace("_", " ")),
                 (negative, kind), other_view_tile(image, landmarks, column, rng),
                 turned_tile(draw_mask(image, landmarks, shaped, "correct", rng), image, landmarks, column,
                             len(faces))]
        for row, tile in zip(rows.values(), tiles):
            row.append(grid_tile(*tile))
    strips = []
    for title, tiles in rows.items():
        strip = np.full((26, GRID_TILE * len(faces), 3), 255, np.uint8)
        cv2.putText(strip, title, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        strips += [strip, np.hstack(tiles)]
    return np.vstack(strips)


def other_view_tile(image, landmarks, column, rng):
    """(image, caption) of one of the engine's other views, by column: turned, touched, cut and dark masks."""
    view = column % 6
    style = random_style(rng, dark=view == 5)
    placement = "below_nose" if view == 2 else "correct"
    drawn = image if view == 3 else draw_mask(image, landmarks, style, placement, rng)
    if view == 1:
        drawn = draw_hand(drawn, landmarks, rng, skin=skin_colour(image, landmarks))
        return drawn, "touched (mask)"
    if view == 4:
        return cut_close_up(drawn, landmarks, "top", 0.25)[0], "cut (mask)"
    yaw = (-1) ** column * 25.0
    turned = turn_face(drawn, landmarks, yaw, 10.0 if view % 2 else -10.0)[0]
    caption = {0: "turned (mask)", 2: "turned, below nose", 3: "turned (no mask)", 5: "dark, turned (mask)"}[view]
    return turned, caption


def turned_tile(image, plain, landmarks, column, columns):
    """(image, caption) of the face turned in 3-D, by column from -75 to 75 degrees, looking a little down."""
    yaw = -75.0 + 150.0 * column / max(1, columns - 1)
    return turn_face(image, landmarks, yaw, 10.0, plain)[0], f"turned {yaw:+.0f}"


def first_fitting(image, landmarks, kinds, start):
    """The first of ``kinds``, from the ``start``-th on (cycling), that fits in the photo, or None."""
    order = [kinds[(start + i) % len(kinds)] for i in range(len(kinds))]
    fitting = fitting_kinds(image.shape, landmarks, order)
    return fitting[0] if fitting else None


def grid_tile(image, caption):
    """The image fitted into a square tile, its caption written on it."""
    scale = GRID_TILE / max(image.shape[:2])
    fitted = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                        interpolation=cv2.INTER_AREA)
    tile = np.full((GRID_TILE, GRID_TILE, 3), 255, np.uint8)
    top, left = (GRID_TILE - fitted.shape[0]) // 2, (GRID_TILE - fitted.shape[1]) // 2
    tile[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # white on a black outline reads on any photo
        cv2.putText(tile, caption, (5, GRID_TILE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, width, cv2.LINE_AA)
    return tile
