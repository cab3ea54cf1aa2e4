"""The labels a face can get, and every name, text and colour they go by.

A model tells apart a mask worn correctly, no mask, and (three-class models)
a mask worn wrongly: below the nose, on the chin. Two-class models know the
first two. Everything else in the project reads these names from here.
"""

CLASS_NAMES = ("mask", "no_mask")
THREE_CLASS_NAMES = ("mask", "no_mask", "incorrect")
# The labels that call for action: a flag, an alert.
VIOLATIONS = ("no_mask", "incorrect")

# What a person reads: on a face's box, in the alert banner, the window's panel and the printed lines.
TEXT = {"mask": "Mask", "no_mask": "No mask", "incorrect": "Mask worn wrongly"}
# Drawn for a tracked person whose label is not decided yet.
UNDECIDED_TEXT = "..."
# BGR, as OpenCV draws: green, red, orange; grey for a face not judged or a person not decided yet.
COLOURS = {"mask": (0, 200, 0), "no_mask": (0, 0, 230), "incorrect": (0, 140, 255)}
UNDECIDED_COLOUR = (160, 160, 160)

# A dataset's class folder for each label (train_mask_detector.py, make_masked_faces.py) ...
FOLDERS = {"mask": "with_mask", "no_mask": "without_mask", "incorrect": "incorrect_mask"}
# ... and every name a public dataset gives a label, as a folder or as a PASCAL VOC object:
# the Kaggle face-mask dataset (andrewmvd) calls a mask worn wrongly `mask_weared_incorrect`.
LABEL_OF_NAME = {folder: label for label, folder in FOLDERS.items()} | {"mask_weared_incorrect": "incorrect"}


def label_of(probabilities):
    """The label a face gets: the likeliest class of ``probabilities`` (name -> probability).

    On a tie the first class wins, so a two-class model's 0.5 is `mask`.
    """
    return max(probabilities, key=probabilities.get)


def two_class(mask_probability):
    """The class probabilities of a two-class model, from its probability of `mask`."""
    return {"mask": mask_probability, "no_mask": 1 - mask_probability}
