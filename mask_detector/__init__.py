"""Face-mask detection: face detectors, a mask classifier and their tools."""

CLASS_NAMES = ("mask", "no_mask")
