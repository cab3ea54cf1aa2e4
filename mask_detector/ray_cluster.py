"""Ray for the photo runs (parallel.py) and the service (service/runners.py): checking and connecting.

Ray is optional (requirements-ray.txt); nothing here imports it before it is asked for.
"""

import os
import socket
from urllib.parse import urlsplit

from mask_detector import PROJECT_ROOT
from mask_detector.errors import UserError, first_line
from mask_detector.quiet import QUIET_SETTINGS

RAY_MISSING = "--ray needs Ray: pip install -r requirements-ray.txt"
# Ray's own ports: a cluster's head (GCS) for HOST:PORT, the Ray client server for ray://HOST:PORT.
RAY_GCS_PORT, RAY_CLIENT_PORT = 6379, 10001
RAY_TIMEOUT_SECONDS = 10.0  # the default of detect_mask_image.py --timeout


def require_ray(address="local", timeout=RAY_TIMEOUT_SECONDS):
    """Fail at once, in one line, when --ray is asked for and Ray is not installed or nothing answers at ``address``."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError(RAY_MISSING) from None
    # Ray itself waits for an address that does not answer for ten minutes and more: ask it first.
    check_ray_address(address, timeout)


def connect_ray(address, verbose=False):
    """ray.init for --ray ADDRESS ('local' starts Ray here), quiet unless ``verbose``; a one-line UserError."""
    import logging

    import ray

    quiet = logging.INFO if verbose else logging.CRITICAL  # failures reach us as exceptions
    environment = {"PYTHONPATH": str(PROJECT_ROOT), **{k: os.environ.get(k, v) for k, v in QUIET_SETTINGS.items()}}
    local = address == "local"
    try:
        ray.init(
            address=None if local else address, num_cpus=os.cpu_count() if local else None, include_dashboard=False,
            runtime_env={"env_vars": environment}, log_to_driver=verbose, logging_level=quiet,
        )
    except (ConnectionError, TimeoutError) as error:  # "auto" with no cluster running, a cluster that went away
        if address == "auto":  # Ray's own words name its command-line flags, not ours
            raise UserError("cannot reach a Ray cluster at auto: none runs on this machine; start one with "
                            "`ray start --head`, give its address, or use --ray local") from None
        raise UserError(f"cannot reach a Ray cluster at {address}: {first_line(error)}") from None
    for name in ("ray", "ray.data"):  # Ray Data's logger does not pass its records up to Ray's
        logging.getLogger(name).setLevel(quiet)


def ray_endpoint(address):
    """(host, port) that ``--ray ADDRESS`` connects to first; None for 'local' and 'auto', which Ray finds itself."""
    if address in ("local", "auto"):
        return None
    client = address.startswith("ray://")
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port or (RAY_CLIENT_PORT if client else RAY_GCS_PORT)
    except ValueError:
        raise UserError(f"--ray {address}: expected local, auto, HOST:PORT or ray://HOST:PORT") from None
    if not parts.hostname:
        raise UserError(f"--ray {address}: expected local, auto, HOST:PORT or ray://HOST:PORT")
    return parts.hostname, port


def check_ray_address(address, timeout):
    """Fail in one line, within ``timeout`` seconds, when nothing answers at a --ray address."""
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except TimeoutError:
        raise UserError(f"cannot reach a Ray cluster at {address} (no answer within {timeout:g} s); "
                        f"check the address, or use --ray local") from None
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise UserError(f"cannot reach a Ray cluster at {address} ({reason}); "
                        f"check the address and that the cluster runs (ray start --head), or use --ray local") from None


def user_error_in(error):
    """The UserError a Ray actor raised, as one of ours again, or None: Ray passes it on as text only."""
    marker = f"{UserError.__module__}.UserError: "
    lines = [line for line in str(error).splitlines() if marker in line]
    return UserError(lines[-1].split(marker, 1)[1]) if lines else None
