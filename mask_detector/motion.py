"""Whether anything moves in a camera's view: the cheap test that decides whether the face detector runs at all.

A small grey copy of each frame (MOTION_HEIGHT pixels high, blurred) is
compared with a running background, the frames before it blended. Both are
standardised first (their mean taken away, divided by their spread), so a
light that dims or a camera that changes its gain moves every pixel alike
and is no motion; the blur and the small size take camera noise, compression
blocks and a shake of a pixel or two away; a change must cover a share of
the view (LEAST_SHARE), after the lone pixels are eroded, to count. When most
of the view changes at once (a cut, the camera turned), the background starts
again from this frame, which counts as motion.
"""

import cv2
import numpy as np

# The grey copy's height: 90 pixels keep a face of 40 pixels in a 640x480 frame as some 6 pixels, enough for a
# head coming in to change its place; the whole test costs some 0.3 ms a 640x480 frame.
MOTION_HEIGHT = 90
# A pixel moves when it differs from the background by this much, in the frame's own spreads (standard
# deviations): camera noise after the blur is a few hundredths of one, a person walking past several tenths.
THRESHOLD = 0.5
# The share of the small copy's pixels that must move: 0.1 %, some 10 pixels of 120x90. On the sample photos
# (tests/test_motion.py's scenes), a camera shaking by up to 2 pixels moved at most 0.03 % of them, a head of
# 60x80 pixels walking in at least 0.2 %; a smaller head is found all the same at the next idle look.
LEAST_SHARE = 0.001
# The blur on the small copy (pixels): 9 smooths a shake's edges away where 5 left up to 0.8 % moving.
BLUR = 9
# Past this share, the view changed as a whole (a cut, the camera turned, the lights switched; a cut between two
# of the sample street photos moves 46 % of the view): the background starts again from this frame.
WHOLE_VIEW = 0.25
# How fast the background takes in what stays: 0.1 a frame, a change that stays still is background within a
# second or two at 10 fps, so a parked bag stops counting as motion.
BLEND = 0.1
# The least spread a frame is standardised by, in grey levels: a dark or flat view's noise is not magnified.
LEAST_SPREAD = 12.0


def shrink(image, size):
    """``image`` resized to ``size`` (width, height): sampled to twice the size, then halved by averaging. Each
    pixel averages four samples of its area: nearly the smoothing of averaging the whole area, at a fraction of
    its cost when the image is several times larger."""
    twice = cv2.resize(image, (size[0] * 2, size[1] * 2), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(twice, size, interpolation=cv2.INTER_AREA)


class MotionDetector:
    """Call with each frame (BGR): True when something moved since the frames before."""

    def __init__(self, height=MOTION_HEIGHT, threshold=THRESHOLD, least_share=LEAST_SHARE, blend=BLEND):
        self.height, self.threshold, self.least_share, self.blend = height, threshold, least_share, blend
        self.background = None
        self.share = 0.0  # the share of the view that moved in the last frame, for whoever measures it
        self._now, self._last = None, None  # the small copies of this frame and the last
        self._kernel = np.ones((3, 3), np.uint8)

    def _small(self, image):
        height, width = image.shape[:2]
        size = (max(1, round(width * self.height / height)), self.height)
        # Noise averaged as by an area resize of the whole frame, at a sixth of its cost (0.3 ms against 1.8 ms
        # for the whole test of a 640x480 frame).
        grey = cv2.cvtColor(shrink(image, size), cv2.COLOR_BGR2GRAY)
        grey = cv2.GaussianBlur(grey.astype(np.float32), (BLUR, BLUR), 0)
        mean, spread = cv2.meanStdDev(grey)
        return (grey - float(mean[0, 0])) / max(float(spread[0, 0]), LEAST_SPREAD)

    def __call__(self, image):
        small = self._small(image)
        self._last, self._now = self._now, small
        if self.background is None or self.background.shape != small.shape:
            self.background, self.share = small, 1.0
            return True
        self.share = float(self._changed(small, self.background).mean())
        if self.share > WHOLE_VIEW:
            self.background = small
            return True
        cv2.accumulateWeighted(small, self.background, self.blend)
        return self.share >= self.least_share

    def _changed(self, now, before):
        """1 where ``now`` differs from ``before`` by more than the threshold, specks of a pixel or two eroded away."""
        return cv2.erode((cv2.absdiff(now, before) > self.threshold).astype(np.uint8), self._kernel)

    def moved_outside(self, areas, shape):
        """Whether something changed since the last frame outside ``areas`` (boxes x1, y1, x2, y2 in pixels of a frame
        of ``shape``) as much as counts as motion: someone came in where no one is followed. Against the last frame,
        not the background: a person walking leaves a trail in the background for a second or two, where the
        background shows again, which is no one."""
        if self._last is None or self._last.shape != self._now.shape:
            return True
        changed = self._changed(self._now, self._last)
        scale = changed.shape[0] / shape[0]
        for x1, y1, x2, y2 in np.asarray(areas, dtype=np.float64).reshape(-1, 4) * scale:
            changed[max(int(y1), 0):max(int(np.ceil(y2)), 0), max(int(x1), 0):max(int(np.ceil(x2)), 0)] = 0
        return float(changed.mean()) >= self.least_share
