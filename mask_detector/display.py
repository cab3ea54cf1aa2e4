"""Drawing results on frames, and the OpenCV windows that show them."""

import os
import sys

import cv2

MASK_COLOR = (0, 200, 0)  # BGR green
NO_MASK_COLOR = (0, 0, 230)  # BGR red
UNDECIDED_COLOR = (160, 160, 160)  # grey: a tracked person whose label is not decided yet
QUIT_KEYS = (ord("q"), 27)  # q and Esc


def caption(result):
    """The label drawn over a face: `Mask 98.1%`, `No Mask 87.0%`, with `#7` for a tracked person."""
    masked = result.label == "mask"
    if not getattr(result, "decided", True):
        text = "..."  # a person whose label is not decided yet
    else:
        probability = result.mask_probability if masked else 1 - result.mask_probability
        text = f"{'Mask' if masked else 'No Mask'} {probability * 100:.1f}%"
    track_id = getattr(result, "track_id", None)
    return text if track_id is None else f"#{track_id} {text}"


def label_color(label):
    return {"mask": MASK_COLOR, "no_mask": NO_MASK_COLOR, None: UNDECIDED_COLOR}[label]


def draw_results(frame, results):
    """Draw a box and its caption per face, in place."""
    height = frame.shape[0]
    thickness = max(1, round(height / 400))
    font_scale = max(0.4, height / 1000)
    for result in results:
        x1, y1, x2, y2 = result.box
        color = label_color(result.label if getattr(result, "decided", True) else None)
        text = caption(result)
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness)
        (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        # Put the label above the box, or inside it when the box touches the top edge.
        top = y1 - text_height - baseline - 2 if y1 - text_height - baseline - 2 >= 0 else y1
        cv2.rectangle(frame, (x1, top), (x1 + text_width + 2, top + text_height + baseline + 2), color, cv2.FILLED)
        cv2.putText(
            frame, text, (x1 + 1, top + text_height + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
            (255, 255, 255), thickness, cv2.LINE_AA,
        )
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
    cv2.rectangle(frame, (0, 0), (width, band), NO_MASK_COLOR, cv2.FILLED)
    scale = band / 45
    (text_width, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    origin = (max(4, (width - text_width) // 2), (band + text_height) // 2)
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return frame


def display_available():
    """True when a window can be shown (an X display or a non-X desktop)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def window_wanted(no_display):
    """Whether a photo run shows its window: without a display it goes on without one, and says so."""
    if no_display:
        return False
    if display_available():
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


def show_image(window, image, wait_ms):
    """Show a photo in a resizable window fitted to 1280 px; True once the user wants to stop."""
    height, width = image.shape[:2]
    cv2.namedWindow(window, cv2.WINDOW_NORMAL)
    scale = min(1.0, 1280 / max(width, height))
    cv2.resizeWindow(window, int(width * scale), int(height * scale))
    cv2.imshow(window, image)
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
