"""A real X server (Xvfb) for the window tests, and what a user and a window manager do on it.

Every wait here polls for what it waits for, with a generous limit: on a
loaded machine a script may take many seconds to start and draw, and a
fixed delay would be either too short there or wasted everywhere else.
"""

import contextlib
import ctypes
import ctypes.util
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

PATIENCE = 120  # seconds: how long a window, a picture or an X server may take to come
WINDOW_TITLE = "Face mask detector"

# Xlib's default error handler ends the process. A close request for a window that is already gone
# (the run closed it between two requests) is harmless, and must not end the test run.
_IGNORE_X_ERRORS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda display, error: 0)


def _x11():
    library = ctypes.util.find_library("X11")
    if library is None:
        pytest.fail("libX11 is needed for the window tests (apt-get install libx11-6)")
    x11 = ctypes.CDLL(library)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XSetErrorHandler(_IGNORE_X_ERRORS)
    return x11


def answers(name):
    """Whether the X server ``name`` accepts a connection now."""
    x11 = _x11()
    connection = x11.XOpenDisplay(name.encode())
    if connection:
        x11.XCloseDisplay(connection)
    return bool(connection)


def _listening_as(number):
    """{socket inode: name} of the sockets that listen as display ``number``, by path and abstract name.

    Clients try the abstract name first: if another process held it, they
    would reach that process's server, not ours.
    """
    names = {f"/tmp/.X11-unix/X{number}", f"@/tmp/.X11-unix/X{number}"}
    listening = "00010000"  # __SO_ACCEPTCON: a socket that accepts connections
    with open("/proc/net/unix") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {row[6]: row[7] for row in rows if len(row) > 7 and row[3] == listening and row[7] in names}


def _sockets_of(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    return inodes


def _serves(server, number):
    """Wait until display ``number`` answers, then tell whether it is ``server`` alone that answers as it."""
    deadline = time.monotonic() + PATIENCE
    while not answers(f":{number}"):
        if server.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    listeners = _listening_as(number)
    ours = {inode: name for inode, name in listeners.items() if inode in _sockets_of(server.pid)}
    return len(ours) == 2 and ours == listeners and Path(f"/tmp/.X11-unix/X{number}").is_socket()


def _stop(server):
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextlib.contextmanager
def virtual_display(log):
    """A fresh Xvfb for the block, its display name (e.g. ':3') once it answers connections; its messages go to ``log``.

    Xvfb picks a free number itself (-displayfd); the number is then checked:
    the server must answer on it, and hold both its sockets, so that no stale or
    foreign server on that number can stand in for it.
    """
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed for the window tests (apt-get install xvfb)")
    with open(log, "w") as messages:
        for _ in range(3):
            read_end, write_end = os.pipe()
            server = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=messages,
            )
            os.close(write_end)
            with os.fdopen(read_end) as announced:
                number = announced.readline().strip() if select.select([announced], [], [], PATIENCE)[0] else ""
            if number.isdigit() and _serves(server, number):
                break
            _stop(server)
        else:
            pytest.fail(f"Xvfb did not start on a display of its own: {Path(log).read_text()[-2000:]}")
    try:
        yield f":{number}"
    finally:
        _stop(server)


def screenshot(display):
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def shows_annotated_picture(shot):
    """A photo is on screen (many colours) with at least one green or red label box."""
    pixels = shot.reshape(-1, 3).astype(int)
    green = np.all(np.abs(pixels - (0, 200, 0)) < 30, axis=1).sum()
    red = np.all(np.abs(pixels - (230, 0, 0)) < 30, axis=1).sum()
    return shot.std() > 20 and len(np.unique(pixels[::7], axis=0)) > 500 and green + red > 200


def find_window(process, display, timeout=PATIENCE):
    """The id of the script's window once it is there; None if the process ends or ``timeout`` passes first."""
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is needed for the window tests (apt-get install xdotool)")
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--name", WINDOW_TITLE],
            env={**os.environ, "DISPLAY": display}, capture_output=True, text=True,
        ).stdout.split()
        if found:
            return int(found[0])
        time.sleep(0.1)
    return None


def watch(process, display, timeout=PATIENCE):
    """The first screenshot that shows the annotated picture; None if the process ends or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    window = find_window(process, display, timeout)
    if window is None:
        return None
    drawn = time.monotonic()  # when anything was last seen on screen
    while process.poll() is None and time.monotonic() < deadline:
        shot = screenshot(display)
        if shows_annotated_picture(shot):
            return shot
        if shot.any():
            drawn = time.monotonic()
        elif time.monotonic() - drawn > 5:
            map_again(display, window)  # a window left black: see map_again
            drawn = time.monotonic()
        time.sleep(0.1)
    return None


def map_again(display, window):
    """Unmap and map the window again, as a window manager does when it takes a new window into its frame.

    Now and then Qt's first picture in a new window is lost on a bare X server
    (no window manager): the window stays black, and an Expose event alone does
    not bring it back; mapped again, Qt draws it. Qt's own idea of the window
    (shown, not closed) does not change.
    """
    subprocess.run(["xdotool", "windowunmap", "--sync", str(window), "windowmap", "--sync", str(window)],
                   env={**os.environ, "DISPLAY": display}, capture_output=True, timeout=PATIENCE)


def close_like_a_window_manager(display, window):
    """Send WM_DELETE_WINDOW, what a window manager sends when the user clicks the close button.

    (xdotool windowclose destroys the X window behind Qt's back: Qt never notices
    and keeps drawing, so it does not stand for a user closing the window.)
    """

    class ClientMessage(ctypes.Structure):
        _fields_ = [
            ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
            ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
            ("format", ctypes.c_int), ("data", ctypes.c_long * 5),
        ]

    class Event(ctypes.Union):
        _fields_ = [("client", ClientMessage), ("padding", ctypes.c_long * 24)]

    x11 = _x11()
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(Event)]
    connection = x11.XOpenDisplay(display.encode())
    assert connection, f"cannot open display {display}"
    event = Event()
    event.client.type = 33  # ClientMessage
    event.client.window = window
    event.client.message_type = x11.XInternAtom(connection, b"WM_PROTOCOLS", 0)
    event.client.format = 32
    event.client.data[0] = x11.XInternAtom(connection, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(connection, window, 0, 0, ctypes.byref(event))
    x11.XFlush(connection)
    x11.XCloseDisplay(connection)


def press_key(display, window, key):
    """Focus the window and press ``key`` on the keyboard, as a user does."""
    subprocess.run(["xdotool", "windowfocus", "--sync", str(window), "key", key],
                   env={**os.environ, "DISPLAY": display}, check=True, capture_output=True, timeout=PATIENCE)


def close_window_when_shown(process, display, timeout=PATIENCE):
    """Wait until the script's window shows its annotated picture, then close it as a user would; the exit status."""
    window = find_window(process, display, timeout)
    if window is None or watch(process, display, timeout) is None:
        process.kill()
        pytest.fail(f"the window never appeared or never showed the annotated picture: {_last_words(process)}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_like_a_window_manager(display, window)
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # not handled yet on a slow machine, or lost: ask again (a gone window is harmless)
    process.kill()
    pytest.fail(f"the window did not close: {_last_words(process)}")


def _last_words(process):
    """The end of what a failed run printed on stderr, when the test reads its stderr through a pipe."""
    _, stderr = process.communicate(timeout=PATIENCE)
    return f"exit status {process.returncode}, stderr: {(stderr or '')[-2000:]}"
