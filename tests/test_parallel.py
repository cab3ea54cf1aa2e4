"""mask_detector/parallel.py: the same records in one process, in spawned processes and on Ray."""

from dataclasses import replace

import pytest

from mask_detector.errors import UserError
from mask_detector.files import DEFAULT_MAX_PIXELS
from mask_detector.parallel import detections
from mask_detector.photos import PhotoJob
from mask_detector.pipeline import PHOTOS

# One pass over each photo: the records agree all the same, in less time.
SETTINGS = replace(PHOTOS, single_scale=True)


def jobs_for(photos, folder):
    return [PhotoJob(photo, folder / photo.name, DEFAULT_MAX_PIXELS) for photo in photos]


@pytest.fixture(scope="module")
def one_process(samples, tmp_path_factory):
    folder = tmp_path_factory.mktemp("one")
    return folder, list(detections(SETTINGS, jobs_for(samples, folder), workers=1))


def test_two_spawned_processes_give_the_records_of_one_process_in_order(one_process, samples, tmp_path):
    folder, expected = one_process
    found = list(detections(SETTINGS, jobs_for(samples, tmp_path), workers=2))
    assert [path for path, *_ in expected] == [path for path, *_ in found] == samples
    assert [record for _, record, *_ in found] == [record for _, record, *_ in expected]
    assert sum(len(record["faces"]) for _, record, *_ in expected) >= len(samples)  # faces were found at all
    # In one process the image and the faces come back too, for a window; from workers only the record.
    assert all(image is not None and len(results) == len(record["faces"]) for _, record, image, results in expected)
    assert all(image is None and results == [] for _, _, image, results in found)
    for photo in samples:  # each worker wrote its photos' annotated copies, as one process does
        assert (tmp_path / photo.name).read_bytes() == (folder / photo.name).read_bytes()


def test_a_bad_photo_is_an_error_in_its_record_from_a_worker_too(samples, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    jobs = [PhotoJob(samples[0]), PhotoJob(junk)]
    for workers in (1, 2):
        records = [record for _, record, *_ in detections(SETTINGS, jobs, workers=workers)]
        assert "faces" in records[0] and "error" not in records[0]
        assert records[1]["error"] == f"{junk} is not an image file", workers


def test_a_missing_model_is_a_user_error_in_one_process_and_from_workers(samples, tmp_path):
    missing = tmp_path / "missing.tflite"  # a Keras model would import TensorFlow in each process first
    settings = replace(SETTINGS, model=str(missing))
    jobs = [PhotoJob(photo) for photo in samples[:2]]
    messages = []
    for workers in (1, 2):
        with pytest.raises(UserError) as error:
            list(detections(settings, jobs, workers=workers))
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"model file {missing} not found") and "\n" not in messages[0]


def test_a_local_ray_run_gives_the_records_of_one_process(one_process, samples, tmp_path):
    folder, expected = one_process
    photos = samples[:2]
    found = list(detections(SETTINGS, jobs_for(photos, tmp_path), workers=2, ray="local"))
    assert [path for path, *_ in found] == photos
    assert [record for _, record, *_ in found] == [record for _, record, *_ in expected[:2]]
    for photo in photos:
        assert (tmp_path / photo.name).read_bytes() == (folder / photo.name).read_bytes()
