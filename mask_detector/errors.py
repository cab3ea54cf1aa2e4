"""One kind of error for things a user can fix, and the wrapper that prints it."""

import contextlib
import errno
import signal
import sys
import threading
import traceback
from pathlib import Path

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class UserError(Exception):
    """A problem with the input or set-up, told to the user in one line."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (files finished, summary printed)."""


def stop_on_sigterm():
    """From now on SIGTERM raises Terminated in the main thread."""

    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C or SIGTERM during the block takes effect at its end, so its work is never cut in half.

    For work whose parts must agree (a frame's JSON line, its video frame and
    its count); main thread only, as Python's signal handlers are.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: a run on another thread (a Ray actor's) has none to defer
        return
    caught = []
    previous = {number: signal.signal(number, lambda signum, frame: caught.append(signum))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            raise Terminated() if caught[0] == signal.SIGTERM else KeyboardInterrupt()


def exit_status(interruption):
    """The conventional exit status for a run stopped by Ctrl-C (130) or SIGTERM (143)."""
    return 143 if isinstance(interruption, Terminated) else 130
def write_failure(path, error):
    """The one line that says why writing ``path`` failed (an OSError)."""
    if error.errno in FULL_DISK:
        return f"no space left on device writing {path}"
    return f"cannot write {path}: {error.strerror or error}"


def first_line(error, limit=200):
    """The first line of an exception's message (libraries' messages run to pages), or its type."""
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__


def run_cli(main, argv=None):
    """Run a script's ``main``: every failure becomes one line on stderr and a non-zero exit."""
    try:
        status = main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as interruption:
        print("interrupted", file=sys.stderr)
        sys.exit(exit_status(interruption))
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        sys.exit(1)
    except OSError as error:
        if error.errno not in FULL_DISK:
            _report_bug(error)
        # A library writing its own file (a Keras model, a plot) can fill the disk too.
        print(f"error: {write_failure(error.filename or 'a file', error)}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:
        _report_bug(error)
    sys.exit(status or 0)


def _report_bug(error):
    """A bug, not bad input: still one line, with where it happened so it can be reported."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    print(
        f"error: unexpected {type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}: "
        f"{first_line(error)}; please report this",
        file=sys.stderr,
    )
    sys.exit(1)
