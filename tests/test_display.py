"""mask_detector/display.py: labels stay inside the frame and never cover each other."""

import itertools

import cv2
import pytest

from support.scripts import VOC_DEV, require


def faces(boxes, probabilities):
    from mask_detector.labels import two_class
    from mask_detector.pipeline import FaceResult

    return [FaceResult(tuple(int(v) for v in box), 0.9, two_class(p)) for box, p in zip(boxes, probabilities)]


def assert_labels_fit(frame_size, results):
    from mask_detector.display import label_layout

    width, height = frame_size
    layout = label_layout(frame_size, results)
    for text, (x1, y1, x2, y2) in layout:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, (text, (x1, y1, x2, y2), frame_size)
    for (_, a), (_, b) in itertools.combinations(layout, 2):
        assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    return layout


def test_labels_of_real_crowds_fit_and_do_not_overlap(samples):
    """The sample street photos, with the faces annotated in them (up to a dozen, close together)."""
    from mask_detector.evaluation import load_voc

    annotations = {a.image.name: a for a in load_voc(require(VOC_DEV))}
    for photo in samples:
        annotation = annotations[photo.name]
        height, width = cv2.imread(str(photo)).shape[:2]
        results = faces(annotation.boxes, [0.999 if label == "mask" else 0.001 for label in annotation.labels])
        layout = assert_labels_fit((width, height), results)
        assert [text for text, _ in layout] == [("Mask 99.9%" if r.label == "mask" else "No mask 99.9%") for r in results]


@pytest.mark.parametrize("frame_size", [(400, 300), (640, 480), (1280, 720)])
def test_labels_of_faces_in_a_row_at_the_right_edge(frame_size):
    """Five small faces side by side against the right edge: each label is wider than its face."""
    width, height = frame_size
    side = width // 20
    boxes = [(width - (i + 1) * side, height // 3, width - i * side, height // 3 + side) for i in range(5)]
    assert_labels_fit(frame_size, faces(boxes, [0.2, 0.9, 0.4, 0.99, 0.01]))
    # And the same row against the top edge, where no label fits above its face.
    top_row = [(x1, 0, x2, side) for x1, _, x2, _ in boxes]
    assert_labels_fit(frame_size, faces(top_row, [0.2, 0.9, 0.4, 0.99, 0.01]))


def test_a_face_not_judged_is_grey_and_says_its_doubt():
    """A face too small, turned or unsure to judge keeps its label, with a question mark (and turned says
    so), and no flag colour."""
    import numpy as np

    from mask_detector.display import caption, draw_results
    from mask_detector.labels import COLOURS, UNDECIDED_COLOUR
    from mask_detector.pipeline import FaceResult

    probabilities = {"mask": 0.3, "no_mask": 0.6, "incorrect": 0.1}
    judged = FaceResult((20, 20, 80, 90), 0.9, probabilities)
    unjudged = FaceResult((120, 20, 180, 90), 0.9, probabilities, judged=False)
    assert caption(judged) == "No mask 60.0%" and caption(unjudged) == "No mask? 60.0%"
    turned = FaceResult((0, 0, 60, 70), 0.9, probabilities, judged=False, not_judged_because="turned")
    small = FaceResult((0, 0, 6, 7), 0.9, probabilities, judged=False, not_judged_because="small")
    assert caption(turned) == "No mask? 60.0% turned" and caption(small) == "No mask? 60.0%"
    frame = draw_results(np.zeros((200, 300, 3), np.uint8), [judged, unjudged])
    assert tuple(frame[60, 20]) == COLOURS["no_mask"]  # the left edge of each box, below its label
    assert tuple(frame[60, 120]) == UNDECIDED_COLOUR
