"""Drawing results on frames, and the OpenCV windows that show them."""

import ctypes
import ctypes.util
import dataclasses
import os
import sys
import threading

import cv2

from mask_detector.boxes import overlap
from mask_detector.errors import UserError
from mask_detector.judging import POSE_REASONS
from mask_detector.labels import COLOURS, TEXT, UNDECIDED_COLOUR, UNDECIDED_TEXT

QUIT_KEYS = (ord("q"), 27)  # q and Esc
# A photo window is at most this size (it fits a 1280x1024 screen with its panels), and
# small photos are enlarged until their longer side is READABLE_SIDE, so that faces and labels can be read.
LARGEST_WINDOW = (1280, 900)
READABLE_SIDE = 800
# Seconds to wait for an X server to answer. A server that is not there refuses at once; on a loaded machine
# (or over a slow link) one that is there was taken for dead once with 5 s: a dead link is told a little later.
DISPLAY_TIMEOUT = 15.0


def place_label(box, size, frame_size, taken):
    """Where a label of ``size`` (width, height) goes for ``box``: (x1, y1, x2, y2) inside the frame.

    Above the box if there is room, else below it or inside its top; when
    another label (``taken``) is there, the nearest free height above or
    below. Its left edge moves left as far as needed to stay in the frame.
    """
    (width, height), (frame_width, frame_height) = size, frame_size
    x1, y1, _, y2 = box
    left = max(0, min(x1, frame_width - width))
    lowest = max(0, frame_height - height)
    preferred = [y1 - height, y2, y1]
    # Sliding from the usual place, the first free height is next to a label in the way, or at an edge.
    edges = [0, lowest] + [top for other in taken for top in (other[1] - height, other[3])]
    for top in preferred + sorted(edges, key=lambda top: abs(top - preferred[0])):
        top = min(max(0, top), lowest)
        spot = (left, top, left + width, top + height)
        if not any(overlap(spot, other) for other in taken):
            return spot
    top = min(max(0, preferred[0]), lowest)  # no free room at all: the usual place
    return left, top, left + width, top + height


def _font(frame_height):
    """(font scale, thickness) of labels on a frame this high."""
    return max(0.4, frame_height / 1000), max(1, round(frame_height / 400))


def label_layout(frame_size, results):
    """Each face's label and its place: [(text, (x1, y1, x2, y2))], in the order of ``results``.

    Labels are placed top to bottom, so that each one's usual place is taken
    first by its own face; none leaves the frame or covers another.
    """
    font_scale, thickness = _font(frame_size[1])
    layout, taken = [None] * len(results), []
    for index in sorted(range(len(results)), key=lambda i: results[i].box[1]):
        text = caption(results[index])
        (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        spot = place_label(results[index].box, (text_width + 2, text_height + baseline + 2), frame_size, taken)
        taken.append(spot)
        layout[index] = (text, spot)
    return layout


def caption(result):
    """The label drawn over a face: `Mask 98.1%`, `No mask 87.0%`, with `#7` for a tracked person.

    A face too small or too unsure to judge says its likeliest class with a
    question mark (`No mask? 51.0%`), drawn grey: it is no flag. One turned
    or tilted past what is judged says so (`Mask? 80.2% turned`).
    """
    if result.decided:
        doubt = "" if result.judged else "?"
        text = f"{TEXT[result.label]}{doubt} {result.probabilities[result.label] * 100:.1f}%"
        if result.not_judged_because in POSE_REASONS:
            text += f" {result.not_judged_because}"
    else:
        text = UNDECIDED_TEXT  # a person whose label is not decided yet
    return text if result.track_id is None else f"#{result.track_id} {text}"


def draw_results(frame, results):
    """Draw a box and its caption per face, in place.

    A label moved away from its box is tied to it by a thin line.
    """
    height, width = frame.shape[:2]
    font_scale, thickness = _font(height)
    colours = [COLOURS[result.label] if result.judged else UNDECIDED_COLOUR for result in results]
    for result, colour in zip(results, colours):
        cv2.rectangle(frame, result.box[:2], result.box[2:], colour, thickness)
    for result, colour, (text, spot) in zip(results, colours, label_layout((width, height), results)):
        x1, y1, _, y2 = result.box
        if spot[3] < y1 - 1 or spot[1] > y2 + 1:
            above = spot[3] < y1
            cv2.line(frame, (spot[0] + 1, spot[3] if above else spot[1]), (x1, y1 if above else y2), colour, 1)
        cv2.rectangle(frame, spot[:2], spot[2:], colour, cv2.FILLED)
        baseline_y = spot[3] - cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)[1] - 1
        cv2.putText(frame, text, (spot[0] + 1, baseline_y), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
    return frame


def draw_panel(frame, lines):
    """A small dark panel of text lines in the bottom-left corner (frame rate, counts), in place.

    At the bottom, since faces are mostly in the upper half of a camera's view.
    """
    scale, thickness, step = 0.5, 1, 20
    height = frame.shape[0]
    width = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for line in lines)
    top = height - 12 - step * len(lines)
    overlay = frame.copy()
    cv2.rectangle(overlay, (4, top), (16 + width, height - 4), (0, 0, 0), cv2.FILLED)
    cv2.addWeighted(overlay, 0.6, frame, 0.4, 0, dst=frame)
    for number, line in enumerate(lines, 1):
        cv2.putText(frame, line, (10, top + step * number), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)
    return frame


def draw_banner(frame, text):
    """A red band with white text across the top of the frame, in place."""
    width = frame.shape[1]
    band = max(28, frame.shape[0] // 14)
    cv2.rectangle(frame, (0, 0), (width, band), COLOURS["no_mask"], cv2.FILLED)
    scale = band / 45
    (text_width, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    origin = (max(4, (width - text_width) // 2), (band + text_height) // 2)
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return frame


def display_available():
    """True when a display is named (an X display or a non-X desktop); see window_problem for one that works."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _x_display_answers(name):
    """Whether the X server ``name`` accepts a connection; True when libX11 is not there to ask."""
    library = ctypes.util.find_library("X11")
    if library is None:
        return True
    x11 = ctypes.CDLL(library)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    answer = []

    def connect():
        connection = x11.XOpenDisplay(name.encode())
        answer.append(bool(connection))
        if connection:
            x11.XCloseDisplay(connection)

    # A server behind a dead network link may never answer: wait on a thread, for a bounded time.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(DISPLAY_TIMEOUT)
    return bool(answer and answer[0])


def window_problem():
    """Why no window can be opened here, as one line ending in `run with --no-display`; "" when one can.

    A display that is named but cannot be reached (a dead `ssh -X`, a
    container) is found here: OpenCV's Qt would abort the whole process.
    """
    if not display_available():
        return "no display found; run with --no-display"
    name = os.environ.get("DISPLAY")
    if sys.platform.startswith("linux") and name and not _x_display_answers(name):
        return f"cannot open a window on display {name}; run with --no-display"
    return ""


def require_window():
    """Raise the UserError of window_problem, if there is one: for scripts that must show a window."""
    problem = window_problem()
    if problem:
        raise UserError(problem)


def window_wanted(no_display):
    """Whether a photo run shows its window: without any display it goes on without one, and says so.

    A display that is named but does not answer stops the run before any work.
    """
    if no_display:
        return False
    if display_available():
        require_window()
        return True
    print("note: no display found, running without a window", file=sys.stderr)
    return False


def window_closed(name):
    """True once the user has closed the window ``name``."""
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        # OpenCV's Qt backend tears its GUI thread down with the last window and
        # then raises ("NULL guiReceiver") instead of answering.
        return True


def close_windows():
    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass  # already gone with the window the user closed (Qt backend)


def photo_scale(height, width):
    """How much a photo is enlarged (> 1) or shrunk (< 1) on screen: 1 when it fits and is readable."""
    fit = min(LARGEST_WINDOW[0] / width, LARGEST_WINDOW[1] / height)
    return min(fit, max(1.0, READABLE_SIDE / max(width, height)))


def show_photo(window, image, results, wait_ms, title):
    """Show a photo with its labels, one screen pixel per pixel (scaled only to fit or to be readable).

    The labels are drawn at the size they are shown, so they stay readable.
    ``title`` is the window's title; returns True once the user wants to stop.
    """
    height, width = image.shape[:2]
    scale = photo_scale(height, width)
    shown = image.copy()
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        shown = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        results = [dataclasses.replace(r, box=tuple(round(v * scale) for v in r.box)) for r in results]
    draw_results(shown, results)
    # GUI_NORMAL: no toolbar; AUTOSIZE: the window is the image's size, not stretched.
    cv2.namedWindow(window, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    cv2.setWindowTitle(window, title)
    cv2.imshow(window, shown)
    key = cv2.waitKey(wait_ms) & 0xFF
    return key in QUIT_KEYS or window_closed(window)


def show_frame(window, frame):
    """Show a video frame; the reason to stop ("q pressed", "window closed") or ""."""
    cv2.imshow(window, frame)
    if (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
        return "q pressed"
    if window_closed(window):
        return "window closed"
    return ""
