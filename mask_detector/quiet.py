"""The libraries' console chatter, silenced in this one place; ``--verbose`` brings it back.

OpenCV (backend notes, FFmpeg's lines), TensorFlow (oneDNN and CPU lines), Qt (missing font
folders) and LiteRT (its XNNPACK line) talk on stderr before or beside our
own lines. Most of them read a setting when they load, so the settings are
made at package import, before any of them loads; a user's own setting wins.
"""

import contextlib
import os
import sys

QUIET_SETTINGS = {
    # FATAL, not ERROR: OpenCV logs as errors what its backends try and give up on ("obsensor ...
    # Camera index out of range" for a camera that is not there); real failures reach us as exceptions.
    "OPENCV_LOG_LEVEL": "FATAL",
    # FFmpeg inside OpenCV ("moov atom not found", "Connection refused", "partial file"): -8 is quiet.
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
    "TF_CPP_MIN_LOG_LEVEL": "2",  # errors only
    "QT_LOGGING_RULES": "default.warning=false",
}
_verbose = False


def silence_libraries():
    user_opencv_level = "OPENCV_LOG_LEVEL" in os.environ
    for name, value in QUIET_SETTINGS.items():
        os.environ.setdefault(name, value)
    if "cv2" in sys.modules and not user_opencv_level:
        # A script that imported OpenCV before this package (the benchmarks): OpenCV read its
        # setting then, so it is told now.
        cv2 = sys.modules["cv2"]
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)


def be_verbose():
    """Let the libraries talk again (TensorFlow and Qt read this when they load, OpenCV at once)."""
    global _verbose
    _verbose = True
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    os.environ.pop("QT_LOGGING_RULES", None)
    os.environ["OPENCV_LOG_LEVEL"] = "WARNING"
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "24"  # FFmpeg's warnings and errors; read when it is first used
    if "cv2" in sys.modules:
        cv2 = sys.modules["cv2"]
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING)


@contextlib.contextmanager
def native_stderr_silenced():
    """Silence what native code writes to stderr in this block, for chatter no setting turns off.

    LiteRT's "Created TensorFlow Lite XNNPACK delegate" and the LiteRT
    converter's summary line are written by C++ straight to file descriptor 2.
    Errors still reach the user as Python exceptions.
    """
    if _verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    """Import TensorFlow without its start-up lines: once it has loaded, the settings above keep it quiet.

    Its oneDNN line ("oneDNN custom operations are on ...") is logged by C++
    before any setting is read, twice, while the module loads. A failed
    import still raises, as ever.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_stderr_silenced():
        import tensorflow
    return tensorflow
