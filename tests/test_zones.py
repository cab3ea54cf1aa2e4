"""mask_detector/zones.py: zones checked and read, in pixels of any frame size, blacked out, their faces left out."""

import cv2
import numpy as np
import pytest

from mask_detector.zones import Zone, ZoneMap, Zones, zones_problem

POSTER = Zone("poster", "ignore", ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5)))
CORNER = Zone("corner", "private", ((0.75, 0.75), (1.0, 0.75), (1.0, 1.0), (0.75, 1.0)))


def test_a_flag_reads_one_zone():
    assert Zone.parse("poster:ignore:0,0 0.5,0 0.5,0.5 0,0.5") == POSTER
    assert Zones([POSTER, CORNER]) == (POSTER, CORNER)
    assert str(Zones([CORNER])) == "corner:private:0.75,0.75 1,0.75 1,1 0.75,1"


@pytest.mark.parametrize("text, said", [
    ("poster:ignore", "expected NAME:KIND:X,Y X,Y X,Y"),
    ("poster:hide:0,0 1,0 1,1", "zone 'poster': kind: expected one of ignore, count, private, got 'hide'"),
    ("poster:ignore:0,0 1,0", "zone 'poster': expected 3 points or more, got 2"),
    ("poster:ignore:0,0 1.5,0 1,1", "zone 'poster': points are fractions of the frame, from 0 to 1; got [1.5, 0.0]"),
    ("poster:ignore:0,0 1,1 1,0 0,1", "zone 'poster': its edges cross each other"),
    ("poster:ignore:0,0 a,0 1,1", "zone 'poster': expected points as X,Y with numbers"),
    ("poster:ignore:0,0,1 1,0 1,1", "zone 'poster': expected points as X,Y"),
    ("a poster:ignore:0,0 1,0 1,1", "zone 'a poster': expected a name of letters, digits, - and _"),
])
def test_a_zone_s_mistake_is_said_naming_the_zone(text, said):
    with pytest.raises(ValueError) as refused:
        Zone.parse(text)
    assert str(refused.value).startswith(said)


def test_a_site_file_s_zones_are_checked_whole():
    good = [{"name": "poster", "kind": "ignore", "points": [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]]}]
    assert zones_problem(good) is None
    assert Zones.from_site(good) == (POSTER,)
    assert zones_problem({"name": "poster"}).startswith("expected a list of zones")
    assert zones_problem([{"name": "poster", "kind": "ignore"}]) == "zone 1: expected a table of name, kind and points"
    assert zones_problem([{"name": "poster", "kind": "ignore", "points": [[0, 0], [1, "x"], [1, 1]]}]) == (
        "zone 'poster': expected points as [x, y] pairs of numbers")
    assert zones_problem(good + good) == "zone 'poster' is named twice; each zone needs its own name"


def test_zones_follow_the_frame_s_size():
    zones = ZoneMap([POSTER])
    assert zones.polygons((480, 640))[0][1].tolist() == [[0, 0], [320, 0], [320, 240], [0, 240]]
    assert zones.polygons((1080, 1920, 3))[0][1].tolist() == [[0, 0], [960, 0], [960, 540], [0, 540]]


def test_a_private_zone_is_black_and_its_faces_and_an_ignore_zone_s_are_left_out(samples):
    image = cv2.resize(cv2.imread(str(samples[0])), (640, 480))
    zones = ZoneMap([POSTER, CORNER])
    zones.black_out(image)
    assert image[360:480, 480:640].max() == 0  # the private corner
    assert image[100:300, 400:560].max() > 0  # elsewhere the picture is as it was
    boxes = [[100, 100, 140, 140], [600, 420, 630, 460], [400, 100, 440, 140], [300, 200, 360, 280]]
    # Inside the poster; inside the private corner; outside both; straddling the poster's edge, centre outside.
    assert zones.ignored(boxes, image.shape).tolist() == [True, True, False, False]
    assert ZoneMap().ignored(boxes, image.shape).tolist() == [False] * 4


def test_a_face_is_in_each_count_zone_its_centre_lies_in():
    door = Zone("door", "count", ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))
    top = Zone("top", "count", ((0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (0.0, 0.5)))
    zones = ZoneMap([door, top, POSTER])
    assert zones.counted == ("door", "top")
    boxes = [[100, 100, 140, 140], [100, 300, 140, 340], [500, 300, 540, 340]]
    assert zones.counted_in(boxes, (480, 640)) == [{"door", "top"}, {"door"}, set()]
    assert zones.ignored(boxes, (480, 640)).tolist() == [True, False, False]  # a count zone leaves faces in


def test_zones_are_drawn_with_their_names(samples):
    image = np.zeros((480, 640, 3), np.uint8)
    ZoneMap([POSTER]).draw(image)
    assert image[0:240, 318:322].max() > 0  # the poster's right edge
    assert image[300:480, 400:640].max() == 0
