"""Live detection: the loop over a frame source, with its counts and its summary line."""

import time
from dataclasses import dataclass

from mask_detector import display


@dataclass
class LiveCounts:
    frames: int = 0
    seconds: float = 0.0
    faces: int = 0
    no_mask: int = 0
    stopped_by: str = ""  # "q pressed", "window closed", "interrupted" or "" (source ended, or --max-frames)

    def summary_line(self):
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"frames {self.frames}, seconds {self.seconds:.2f}, fps {rate:.1f}, "
            f"faces {self.faces}, no_mask {self.no_mask}"
        )


class FrameRate:
    """Frames per second for the screen, as an exponential average so that it stays readable."""

    def __init__(self):
        self.value = 0.0
        self._last = None

    def tick(self):
        now = time.perf_counter()
        if self._last is not None:
            instant = 1.0 / max(now - self._last, 1e-6)
            self.value = instant if self.value == 0.0 else 0.9 * self.value + 0.1 * instant
        self._last = now
        return self.value


def run_live(pipeline, source, writer=None, window=None, max_frames=0):
    """Detect and classify every frame of ``source``; draw, write and show as asked; return the counts."""
    counts = LiveCounts()
    frame_rate = FrameRate()
    start = time.perf_counter()
    frame_rate.tick()
    try:
        for frame in source:
            results = pipeline(frame)
            counts.frames += 1
            counts.faces += len(results)
            counts.no_mask += sum(r.label == "no_mask" for r in results)
            fps = frame_rate.tick()
            if writer or window:
                display.draw_results(frame, results)
                display.draw_status(frame, f"{fps:.1f} FPS  faces {len(results)}")
            if writer:
                writer.write(frame)
            if window:
                counts.stopped_by = display.show_frame(window, frame)
                if counts.stopped_by:
                    break
            if max_frames and counts.frames >= max_frames:
                break
    except KeyboardInterrupt:
        counts.stopped_by = "interrupted"
    finally:
        if writer:
            writer.close()
        if window:
            display.close_windows()
    counts.seconds = time.perf_counter() - start
    return counts
