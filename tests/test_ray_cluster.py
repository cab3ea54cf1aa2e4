"""mask_detector/ray_cluster.py: --ray addresses read, checked at once and in one line; Ray's errors made ours."""

import socket
import time

import pytest

from mask_detector.errors import UserError
from mask_detector.ray_cluster import check_ray_address, ray_endpoint, user_error_in


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
    error = user_error_in(RuntimeError(text))
    assert isinstance(error, UserError) and str(error) == "model file /models/missing.h5 not found; train one first"
    assert user_error_in(RuntimeError("ray.exceptions.RayActorError: The actor died unexpectedly")) is None
