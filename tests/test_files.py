"""Reading image files (read_image): damaged bytes give a colour image or a UserError, nothing else."""

import time

import cv2
import numpy as np

from support.media import mutate
from mask_detector.errors import UserError


def test_read_image_on_mutated_bytes_only_raises_user_error(samples, tmp_path):
    from mask_detector.files import read_image

    rng = np.random.default_rng(11)
    sources = [samples[0].read_bytes(), cv2.imencode(".png", cv2.imread(str(samples[1])))[1].tobytes()]
    path = tmp_path / "mutated.img"
    outcomes = {"image": 0, "refused": 0}
    deadline = time.monotonic() + 10
    for attempt in range(3000):
        if time.monotonic() > deadline:
            break
        path.write_bytes(mutate(sources[attempt % 2], rng))
        try:
            image = read_image(path)
        except UserError:
            outcomes["refused"] += 1
            continue
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0
        outcomes["image"] += 1
    assert outcomes["image"] > 20 and outcomes["refused"] > 20, outcomes
