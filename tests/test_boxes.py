"""Box utilities: overlaps, and one box per face when a box lies inside another."""

from mask_detector.boxes import as_boxes, drop_nested, iou_matrix, near, share_inside


def test_a_box_nested_in_a_large_one_has_small_iou_but_lies_wholly_inside():
    large, nested = as_boxes([[0, 0, 100, 100]]), as_boxes([[30, 10, 70, 50]])
    assert iou_matrix(large, nested)[0, 0] < 0.2  # what NMS looks at: it keeps both
    assert share_inside(large, nested)[0, 0] == 1.0
    assert share_inside(nested, large)[0, 0] == 1.0  # the same whichever side is asked


def test_drop_nested_keeps_the_larger_box_and_leaves_neighbours_alone():
    boxes = [[30, 10, 70, 50],      # the eyes and the top of a mask, inside the face below
             [0, 0, 100, 100],      # the whole face
             [90, 20, 150, 80],     # a neighbour that overlaps the face's edge a little
             [300, 300, 320, 320]]  # a small face elsewhere
    assert drop_nested(boxes) == [1, 2, 3]
    assert drop_nested([]) == []


def test_a_face_half_behind_another_is_kept():
    """A person half hidden behind another's face overlaps it by less than most of its area."""
    front, behind = [0, 0, 100, 100], [60, 20, 130, 90]
    assert share_inside(as_boxes([front]), as_boxes([behind]))[0, 0] < 0.6
    assert drop_nested([front, behind]) == [0, 1]


def test_near_pairs_boxes_of_like_size_and_place():
    a = as_boxes([[0, 0, 40, 40]])
    b = as_boxes([[10, 5, 50, 45], [0, 0, 100, 100], [200, 200, 240, 240]])
    assert near(a, b).tolist() == [[True, False, False]]
