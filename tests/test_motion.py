"""mask_detector/motion.py on real photos: camera noise, compression, a dimming light and a shaking camera are no
motion; a person coming in is, and so is a cut, after which the still view is quiet again; motion outside the
people followed is told from theirs."""

import cv2
import numpy as np

from mask_detector.motion import MotionDetector
from support.service import photo


def camera_frames(view, count, rng, dim_to=1.0, shake=0):
    """``count`` frames of a still ``view`` as a cheap camera sends them: noise, JPEG blocks, a light that dims
    to ``dim_to`` of itself, and a shake of up to ``shake`` pixels."""
    frames = []
    for number in range(count):
        gain = 1.0 + (dim_to - 1.0) * number / max(1, count - 1)
        dx, dy = rng.integers(-shake, shake + 1, 2) if shake else (0, 0)
        moved = cv2.warpAffine(view, np.float32([[1, 0, dx], [0, 1, dy]]), view.shape[1::-1],
                               borderMode=cv2.BORDER_REFLECT)
        noisy = np.clip(moved.astype(np.float32) * gain + rng.normal(0, 4, view.shape), 0, 255).astype(np.uint8)
        frames.append(cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], cv2.IMREAD_COLOR))
    return frames


def motion_in(frames, detector=None):
    detector = detector or MotionDetector()
    return [detector(frame) for frame in frames]


def test_noise_compression_dimming_and_shake_are_no_motion(samples):
    rng = np.random.default_rng(0)
    view = photo(samples, "maksssksksss244.jpg")
    assert not any(motion_in(camera_frames(view, 60, rng))[1:])
    assert not any(motion_in(camera_frames(view, 60, rng, dim_to=0.5))[1:])  # the light halves in 6 s at 10 fps
    assert not any(motion_in(camera_frames(view, 60, rng, shake=2))[1:])


def test_a_person_coming_in_is_motion_and_a_still_view_is_quiet_again(samples):
    rng = np.random.default_rng(1)
    room = cv2.GaussianBlur(photo(samples, "maksssksksss244.jpg"), (31, 31), 0)
    person = cv2.resize(photo(samples, "maksssksksss716.jpg")[100:300, 250:400], (60, 80))
    frames = []
    for x in range(0, 300, 15):  # a head of 60x80 pixels walking in from the left, 15 pixels a frame
        frame = room.copy()
        frame[200:280, x:x + 60] = person
        frames.append(frame)
    still = camera_frames(frames[-1], 40, rng)
    detector = MotionDetector()
    assert motion_in(camera_frames(room, 10, rng), detector)[1:] == [False] * 9
    assert all(motion_in(frames[1:], detector))
    quiet = motion_in(still, detector)
    assert not any(quiet[20:]), "a person who stopped is background within two seconds"


def test_a_cut_is_motion_once(samples):
    rng = np.random.default_rng(2)
    first, second = (camera_frames(photo(samples, name), 10, rng) for name in ("maksssksksss244.jpg",
                                                                                "maksssksksss716.jpg"))
    moved = motion_in(first + second)
    assert moved[0] and not any(moved[1:10]) and moved[10] and not any(moved[11:])


def test_motion_where_someone_is_followed_is_told_from_motion_elsewhere(samples):
    rng = np.random.default_rng(3)
    room = cv2.GaussianBlur(photo(samples, "maksssksksss244.jpg"), (31, 31), 0)
    person = cv2.resize(photo(samples, "maksssksksss716.jpg")[100:300, 250:400], (60, 80))
    detector = MotionDetector()
    motion_in(camera_frames(room, 10, rng), detector)
    walker = (0, 150, 400, 480)  # where the followed person walks: their face and the body below it
    for x in range(100, 300, 15):
        frame = camera_frames(room, 1, rng)[0]
        frame[200:280, x:x + 60] = person
        assert detector(frame)
        assert not detector.moved_outside([walker], frame.shape)
    # Someone else comes in on the right, where no one is followed.
    frame[200:280, 500:560] = person
    assert detector(frame) and detector.moved_outside([walker], frame.shape)
    # Once both stand still, the background still differs where the newcomer came in (motion), but nothing changed
    # since the last frame outside the walker's place: only that counts, as a walker's trail is no one.
    for image in camera_frames(frame, 3, rng):
        assert detector(image)
        assert not detector.moved_outside([walker], image.shape)
