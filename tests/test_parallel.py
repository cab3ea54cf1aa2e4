"""mask_detector/parallel.py: the same records in one process, in spawned processes and on Ray; --ray addresses."""

import socket
import time
from dataclasses import replace

import pytest

from mask_detector.errors import UserError
from mask_detector.files import DEFAULT_MAX_PIXELS
from mask_detector.parallel import _user_error_in, check_ray_address, detections, ray_endpoint
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


@pytest.mark.parametrize("address, endpoint", [
    ("local", None), ("auto", None),
    ("10.0.0.5:6380", ("10.0.0.5", 6380)),
    ("head.example", ("head.example", 6379)),  # a cluster's head, at Ray's own port
    ("ray://head.example:10002", ("head.example", 10002)),
    ("ray://head.example", ("head.example", 10001)),  # Ray's client server port
    ("[::1]:7000", ("::1", 7000)),
])
def test_ray_endpoint_reads_every_form_of_address(address, endpoint):
    assert ray_endpoint(address) == endpoint


@pytest.mark.parametrize("address", ["head:notaport", ":6379", "head:99999", "ray://", "ray://:10001"])
def test_ray_endpoint_refuses_what_is_no_address(address):
    with pytest.raises(UserError) as refused:
        ray_endpoint(address)
    assert str(refused.value) == f"--ray {address}: expected local, auto, HOST:PORT or ray://HOST:PORT"


def closed_port():
    """A local port where nothing listens: bound for a moment, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_closed_port_is_refused_at_once_in_one_line():
    port = closed_port()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        start = time.monotonic()
        with pytest.raises(UserError) as refused:
            check_ray_address(address, timeout=5)
        assert time.monotonic() - start < 5
        assert str(refused.value).startswith(f"cannot reach a Ray cluster at {address} (connection refused); ")


def test_an_address_that_never_answers_is_given_up_within_the_timeout():
    # A listening socket that never accepts, its queue full: the next connection waits unanswered.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        queued = []
        try:
            while len(queued) < 8:
                client = socket.socket()
                queued.append(client)
                client.settimeout(0.3)
                client.connect(("127.0.0.1", port))
        except TimeoutError:
            pass
        else:
            pytest.fail("the listening queue never filled")
        try:
            start = time.monotonic()
            with pytest.raises(UserError) as refused:
                check_ray_address(f"127.0.0.1:{port}", timeout=1.5)
            seconds = time.monotonic() - start
        finally:
            for client in queued:
                client.close()
    assert 1.4 <= seconds < 5, seconds
    assert str(refused.value) == (f"cannot reach a Ray cluster at 127.0.0.1:{port} (no answer within 1.5 s); "
                                  f"check the address, or use --ray local")


def test_local_and_auto_are_left_to_ray():
    check_ray_address("local", timeout=0.01)
    check_ray_address("auto", timeout=0.01)


def test_a_user_error_an_actor_raised_is_ours_again():
    text = ("Traceback (most recent call last):\n  File \"parallel.py\", line 1, in __call__\n"
            "ray.exceptions.RayTaskError(UserError): ray::Detector.__call__()\n"
            "mask_detector.errors.UserError: model file /models/missing.h5 not found; train one first\n")
    error = _user_error_in(RuntimeError(text))
    assert isinstance(error, UserError) and str(error) == "model file /models/missing.h5 not found; train one first"
    assert _user_error_in(RuntimeError("ray.exceptions.RayActorError: The actor died unexpectedly")) is None


def test_a_local_ray_run_gives_the_records_of_one_process(one_process, samples, tmp_path):
    folder, expected = one_process
    photos = samples[:2]
    found = list(detections(SETTINGS, jobs_for(photos, tmp_path), workers=2, ray="local"))
    assert [path for path, *_ in found] == photos
    assert [record for _, record, *_ in found] == [record for _, record, *_ in expected[:2]]
    for photo in photos:
        assert (tmp_path / photo.name).read_bytes() == (folder / photo.name).read_bytes()
