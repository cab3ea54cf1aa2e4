"""mask_detector/data.py: the leak-free split, the face framing and the augmentation."""

import re

import numpy as np

from support.scripts import DATASET, VOC_DEV, require


def test_split_keeps_duplicates_on_one_side():
    from mask_detector.data import find_images, split_without_leaks

    images = find_images([require(DATASET / "observations")], report=lambda message: None)
    train, validation, test, stats = split_without_leaks(images, seed=3)
    # The seed's dataset is known to hold about 97 extra copies of files.
    assert 80 <= stats["duplicates_dropped"] <= 120
    sides = [set(part.hashes) for part in (train, validation, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sum(len(s) for s in sides) == stats["unique"]
    # The same seed gives the same split.
    again = split_without_leaks(images, seed=3)[2]
    assert again.paths == test.paths


def test_augmentation_moves_every_image_differently_and_keeps_its_size():
    import tensorflow as tf

    from mask_detector.data import random_affine

    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (64, 1))
    photo = np.stack([ramp, ramp.T, 255 - ramp], axis=-1)  # no symmetry: any move shows
    batch = np.stack([photo] * 8)
    moved = random_affine(tf.constant(batch)).numpy()
    assert moved.shape == batch.shape and moved.dtype == np.float32
    assert all(np.abs(image - photo).mean() > 1 for image in moved)
    assert all(np.abs(moved[i] - moved[j]).mean() > 1 for i in range(8) for j in range(i))
    # Edges repeat the nearest pixel, so no black corners and no values out of range.
    assert moved.min() >= -1e-3 and moved.max() <= 255 + 1e-3  # bilinear sums round in float32
    flat = random_affine(tf.fill([4, 32, 32, 3], 90.0)).numpy()
    np.testing.assert_allclose(flat, 90.0, atol=1e-3)


def test_training_faces_are_cut_at_the_box_the_detector_gives_at_run_time(tmp_path):
    """A loose training crop is cut to the box YuNet gives the same face in the whole photo."""
    import cv2

    from mask_detector.data import ImageList, locate_faces, make_dataset
    from mask_detector.boxes import iou_matrix
    from mask_detector.evaluation import load_voc
    from mask_detector.faces import YuNetDetector

    detector = YuNetDetector(detect_size=1280)
    photo, run_time_box = None, None
    for annotation in load_voc(require(VOC_DEV)):
        if (annotation.sizes >= 80).any():
            photo = cv2.imread(str(annotation.image))
            faces = [f for f in detector.detect(photo) if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= 80]
            if faces:
                run_time_box = np.array(faces[0].box)
                break
    assert run_time_box is not None
    x1, y1, x2, y2 = run_time_box
    margin = (x2 - x1) // 2  # the face fills half the crop's side, as in many training sets
    left, top = max(0, x1 - margin), max(0, y1 - margin)
    loose = photo[top:y2 + margin, left:x2 + margin]
    cv2.imwrite(str(tmp_path / "loose.png"), loose)
    across, down = np.meshgrid(np.linspace(0, 255, 100), np.linspace(0, 255, 120))
    no_face = np.stack([across, down, np.full_like(across, 90)], axis=-1).astype(np.uint8)  # a wrong crop would show
    cv2.imwrite(str(tmp_path / "no_face.png"), no_face)
    images = ImageList([str(tmp_path / "loose.png"), str(tmp_path / "no_face.png")], [0, 1], ["a", "b"], ["a", "b"])

    messages = []
    locate_faces(images, messages.append)
    assert re.fullmatch(r"faces located as the face detector finds them at run time: 1 of 2 images \(the rest, "
                        r"with no single face found, are kept whole\) in [\d.]+ s", messages[0]), messages
    assert images.face_boxes[1] is None
    box_top, box_left, height, width = images.face_boxes[0]
    found_box = np.array([[left + box_left, top + box_top, left + box_left + width, top + box_top + height]])
    assert iou_matrix(found_box, run_time_box[None])[0, 0] > 0.8

    # What training reads is that box, resized; the image without a face is read whole.
    batch = next(iter(make_dataset(images, 64, batch_size=2)))[0].numpy()
    crop = cv2.cvtColor(loose[box_top:box_top + height, box_left:box_left + width], cv2.COLOR_BGR2RGB)
    expected = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(batch[0] - expected).mean() < 6
    whole = cv2.resize(cv2.imread(str(tmp_path / "no_face.png"))[..., ::-1], (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(batch[1] - whole).mean() < 3


def test_aligned_training_crops_are_the_run_time_aligned_crops():
    """--crop aligned: tf.data warps each face by its landmarks as classifier.align_faces does at run time
    (large faces shrunk first in both); an image without a face is cut at its box, here the whole image."""
    import cv2

    from mask_detector.classifier import FACE_TEMPLATE, align_faces
    from mask_detector.data import ImageList, locate_faces, make_dataset
    from mask_detector.files import read_image

    paths = [str(p) for p in sorted(require(DATASET / "chandrikadeb7" / "with_mask").glob("*.jpg"))[:6]]
    images = locate_faces(ImageList(paths, [0] * 6, ["x"] * 6, ["x"] * 6), report=lambda message: None)
    assert sum(points is not None for points in images.landmarks) >= 4
    batch = next(iter(make_dataset(images, 128, batch_size=6, aligned=True)))[0].numpy()
    for path, points, trained in zip(paths, images.landmarks, batch):
        if points is None:
            continue
        image = read_image(path)  # as the scripts read it, and training too
        run_time = align_faces(image, [points], 128)[0].astype(np.float32)
        assert np.abs(run_time - trained).mean() < 6, path
        # And the eyes land where the template puts them: the warp carries the landmarks there.
        matrix = cv2.estimateAffinePartial2D(np.float32(points), FACE_TEMPLATE * 128, method=cv2.LMEDS)[0]
        moved = np.hstack([points, np.ones((5, 1))]) @ matrix.T
        assert np.abs(moved[:2] - FACE_TEMPLATE[:2] * 128).max() < 12


def test_a_synthetic_face_keeps_the_pose_it_was_drawn_at_and_a_real_one_the_pose_of_its_landmarks(tmp_path):
    """sources.jsonl's "pose" (the engine knows what it drew) comes through the split; an image without one
    gets the pose its landmarks give, and one without landmarks none."""
    import json
    import shutil

    from mask_detector.data import find_images
    from mask_detector.pose import Pose, project

    photos = sorted(require(DATASET / "observations" / "with_mask").glob("*.jpg"))[:3]
    for folder in ("with_mask", "without_mask"):
        (tmp_path / folder).mkdir()
    for index, photo in enumerate(photos):
        shutil.copyfile(photo, tmp_path / ("with_mask" if index < 2 else "without_mask") / f"{index}.jpg")
    lines = [{"image": "with_mask/0.jpg", "source": "a" * 64, "pose": {"yaw": 61.5, "pitch": -8.0, "roll": 2.0}},
             {"image": "with_mask/1.jpg", "source": "b" * 64}]
    (tmp_path / "sources.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    images = find_images([tmp_path], report=lambda message: None)
    order = [images.paths.index(str(tmp_path / name)) for name in ("with_mask/0.jpg", "with_mask/1.jpg",
                                                                  "without_mask/2.jpg")]
    images.landmarks = [None] * len(images.paths)
    images.landmarks[order[1]] = project(-30.0, 0.0, 0.0)
    poses = images.subset(order).poses()
    assert poses[0] == Pose(61.5, -8.0, 2.0)
    assert abs(poses[1].yaw + 30) < 4
    assert poses[2] is None


def test_located_faces_are_kept_by_each_image_s_sha256_and_read_back_as_they_were(tmp_path):
    import shutil

    from mask_detector.data import FaceCache, ImageList, locate_faces
    from mask_detector.faces import FACE_DETECTOR_DIR
    from mask_detector.files import sha256_of

    paths = [str(p) for p in sorted(require(DATASET / "chandrikadeb7" / "with_mask").glob("*.jpg"))[:6]]
    copy = tmp_path / "copy of the first.jpg"  # the same bytes under another name: the same faces
    shutil.copy(paths[0], copy)
    paths.append(str(copy))

    def located(cache):
        messages = []
        images = ImageList(paths, [0] * 7, [sha256_of(p) for p in paths], ["x"] * 7)
        locate_faces(images, messages.append, cache)
        return images, "\n".join(messages)

    fresh, _ = located(None)
    first, said = located(tmp_path / "cache")
    # The copy is taken from the cache as soon as its first is located.
    assert said.endswith(f", 1 of them from the cache {next((tmp_path / 'cache').glob('faces-*.jsonl'))}")
    again, said = located(tmp_path / "cache")
    assert ", 7 of them from the cache" in said
    for images in (first, again):
        assert images.face_boxes == fresh.face_boxes
        assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(images.landmarks,
                                                                                         fresh.landmarks))
    assert sum(box is not None for box in fresh.face_boxes) >= 5
    # A line cut short (a disk that filled up): that image is located again, the others read.
    cache_file = next((tmp_path / "cache").glob("faces-*.jsonl"))
    lines = cache_file.read_text().splitlines()
    cache_file.write_text("\n".join(lines[:-1] + [lines[-1][:40]]) + "\n")
    _, said = located(tmp_path / "cache")
    assert ", 6 of them from the cache" in said  # one image of seven located again
    # Another detector setting keeps a file of its own.
    detector = FACE_DETECTOR_DIR / "face_detection_yunet_2023mar.onnx"
    assert FaceCache(tmp_path, detector, "a").path != FaceCache(tmp_path, detector, "b").path
    # A cache that cannot be written is said, and training goes on.
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    _, said = located(tmp_path / "blocked" / "cache")
    assert said.startswith(f"warning: the located faces were not kept in {tmp_path / 'blocked' / 'cache'}")
    assert ", 1 of them from the cache" in said


def test_face_crops_held_in_memory_serve_what_reading_from_disk_serves():
    """A split read once into face_crops gives the faces make_dataset reads from disk (to the rounding of a
    uint8), at every calibration face size too; in training every epoch shuffles and augments anew."""
    from mask_detector.data import ImageList, crop_batches, face_crops, locate_faces, make_dataset

    paths = [str(p) for p in sorted(require(DATASET / "chandrikadeb7" / "with_mask").glob("*.jpg"))[:5]]
    paths += [str(p) for p in sorted(require(DATASET / "chandrikadeb7" / "without_mask").glob("*.jpg"))[:5]]
    labels = [0] * 5 + [1] * 5
    images = locate_faces(ImageList(paths, labels, ["x"] * 10, ["x"] * 10), report=lambda message: None)
    crops = face_crops(images, 96, aligned=True, batch_size=4)
    assert crops.shape == (10, 96, 96, 3) and crops.dtype == np.uint8
    for side, most in ((0, 0.51), (16, 3.0)):
        from_disk, truth = next(iter(make_dataset(images, 96, batch_size=10, face_side=side, aligned=True)))
        held, held_truth = next(iter(crop_batches(crops, labels, batch_size=10, face_side=side)))
        assert held_truth.numpy().tolist() == truth.numpy().tolist() == labels
        assert np.abs(held.numpy() - from_disk.numpy()).mean() < most, side
    training = crop_batches(crops, labels, batch_size=10, training=True, seed=1)
    epochs = [next(iter(training)) for _ in range(2)]
    for batch, truth in epochs:
        assert batch.shape == (10, 96, 96, 3) and sorted(truth.numpy().tolist()) == labels
    assert epochs[0][1].numpy().tolist() != epochs[1][1].numpy().tolist()  # reshuffled each epoch
    assert np.abs(epochs[0][0].numpy() - epochs[1][0].numpy()).mean() > 1
