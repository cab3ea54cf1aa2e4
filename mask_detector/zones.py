"""Zones of a camera's view: parts of the frame whose faces are not people, and parts never to be seen.

A zone is a polygon in fractions of the frame's width and height (0 to 1),
so that it holds when the camera's resolution changes, with a name and a
kind:

- ``ignore``: a face whose box centre lies inside is no person (a poster, a
  screen, the street behind the glass): it starts no track, is never
  counted and raises no alert. Its face is still hidden where privacy says
  faces are hidden.
- ``count``: its people are counted apart as well (by label, compliance),
  a person in each count zone their face was seen in.
- ``private``: blacked out in the frame before anything else sees it, so no
  face is found there and no picture shows it (window, video, snapshots,
  clips), whatever ``privacy`` says.

In a site file, a camera's ``zones`` is a list of tables:
``zones = [{name = "poster", kind = "ignore", points = [[0.0, 0.0], [0.3, 0.0], [0.3, 0.4], [0.0, 0.4]]}]``;
the live script's ``--zone NAME:KIND:X,Y X,Y X,Y ...`` gives one.
"""

import re
from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("ignore", "count", "private")
NAME = r"[A-Za-z0-9_-]{1,64}"
BLACK = (0, 0, 0)


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str  # one of KINDS
    points: tuple  # ((x, y), ...) in fractions of the frame's width and height

    def problem(self):
        """What is wrong with the zone, in a phrase naming it; None when nothing is."""
        where = f"zone {self.name!r}"
        if not re.fullmatch(NAME, self.name):
            return f"zone {self.name!r}: expected a name of letters, digits, - and _, 1 to 64 of them"
        if self.kind not in KINDS:
            return f"{where}: kind: expected one of {', '.join(KINDS)}, got {self.kind!r}"
        if len(self.points) < 3:
            return f"{where}: expected 3 points or more, got {len(self.points)}"
        outside = [point for point in self.points if not all(0.0 <= value <= 1.0 for value in point)]
        if outside:
            return f"{where}: points are fractions of the frame, from 0 to 1; got {list(outside[0])}"
        if crosses_itself(self.points):
            return f"{where}: its edges cross each other; give the points in order around the zone"
        return None

    @classmethod
    def parse(cls, text):
        """A zone from ``NAME:KIND:X,Y X,Y X,Y ...`` (the --zone flag); ValueError in words if it is not one."""
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"expected NAME:KIND:X,Y X,Y X,Y ..., got {text!r}")
        name, kind, corners = parts
        try:
            points = tuple(tuple(float(value) for value in corner.split(",")) for corner in corners.split())
        except ValueError:
            raise ValueError(f"zone {name!r}: expected points as X,Y with numbers, got {corners!r}") from None
        if any(len(point) != 2 for point in points):
            raise ValueError(f"zone {name!r}: expected points as X,Y, got {corners!r}")
        zone = cls(name, kind, points)
        problem = zone.problem()
        if problem:
            raise ValueError(problem)
        return zone


def zones_problem(value):
    """Why a site file's ``zones`` value is not a list of zones, in a phrase; None when it is one."""
    if not isinstance(value, list):
        return f"expected a list of zones, got {value!r}"
    for number, table in enumerate(value, 1):
        if not isinstance(table, dict) or set(table) != {"name", "kind", "points"}:
            return f"zone {number}: expected a table of name, kind and points"
        if not isinstance(table["name"], str) or not isinstance(table["kind"], str):
            return f"zone {number}: expected a name and a kind in text"
        points = table["points"]
        if not isinstance(points, list) or not all(
                isinstance(point, list) and len(point) == 2 and all(_is_number(v) for v in point) for point in points):
            return f"zone {table['name']!r}: expected points as [x, y] pairs of numbers"
        problem = zone_of(table).problem()
        if problem:
            return problem
    names = [table["name"] for table in value]
    twice = sorted({name for name in names if names.count(name) > 1})
    return f"zone {twice[0]!r} is named twice; each zone needs its own name" if twice else None


def zone_of(table):
    """The Zone of a site file's table (checked by zones_problem)."""
    return Zone(table["name"], table["kind"], tuple(tuple(float(v) for v in point) for point in table["points"]))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def crosses_itself(points):
    """Whether two edges of the closed polygon through ``points`` cross (edges that share a corner do not)."""
    count = len(points)
    edges = [(np.array(points[i]), np.array(points[(i + 1) % count])) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue  # neighbours share a corner
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def _segments_cross(a, b, c, d):
    def side(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return side(a, b, c) != side(a, b, d) and side(c, d, a) != side(c, d, b)


class Zones(tuple):
    """A camera's zones, as a setting's value: the kind that live.LiveSettings.zones declares, which the site file
    (problem_of, from_site) and the --zone flag (parse, once per flag) read."""

    problem_of = staticmethod(zones_problem)

    @classmethod
    def from_site(cls, value):
        return cls(zone_of(table) for table in value)

    parse = staticmethod(Zone.parse)

    @property
    def counted(self):
        """The names of the count zones."""
        return tuple(zone.name for zone in self if zone.kind == "count")

    def __str__(self):
        return " ".join(f"{zone.name}:{zone.kind}:" + " ".join(f"{x:g},{y:g}" for x, y in zone.points)
                        for zone in self) or "none"


class ZoneMap:
    """A camera's zones in pixels of its frames (the polygons made again when the frame size changes)."""

    def __init__(self, zones=()):
        self.zones = Zones(zones)
        self._size = None
        self._polygons = []  # (Zone, int32 polygon in pixels)

    def __bool__(self):
        return bool(self.zones)

    def polygons(self, shape):
        """[(Zone, polygon in pixels)] for frames of ``shape`` (height, width, ...)."""
        height, width = shape[:2]
        if self._size != (height, width):
            self._size = (height, width)
            self._polygons = [(zone, np.round(np.array(zone.points) * [width, height]).astype(np.int32))
                              for zone in self.zones]
        return self._polygons

    def black_out(self, image):
        """Fill the private zones of ``image`` with black, in place: nothing after this sees them."""
        private = [polygon for zone, polygon in self.polygons(image.shape) if zone.kind == "private"]
        if private:
            cv2.fillPoly(image, private, BLACK)

    def containing(self, boxes, shape, kinds):
        """Per box (x1, y1, x2, y2), the set of names of the zones of ``kinds`` its centre lies in, in frames of
        ``shape``."""
        chosen = [(zone.name, polygon) for zone, polygon in self.polygons(shape) if zone.kind in kinds]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return [{name for name, polygon in chosen if cv2.pointPolygonTest(polygon, (float(x), float(y)), False) >= 0}
                for x, y in (boxes[:, :2] + boxes[:, 2:]) / 2]

    def ignored(self, boxes, shape):
        """Per box, whether its centre lies in an ignore or a private zone: a face that is no person."""
        return np.array([bool(names) for names in self.containing(boxes, shape, ("ignore", "private"))], dtype=bool)

    @property
    def counted(self):
        return self.zones.counted

    def counted_in(self, boxes, shape):
        """Per box, the set of names of the count zones its centre lies in."""
        return self.containing(boxes, shape, ("count",))

    def draw(self, image):
        """Each zone's outline and name on ``image`` (private zones are black already)."""
        for zone, polygon in self.polygons(image.shape):
            colour = (160, 160, 160) if zone.kind == "private" else (0, 200, 255)
            cv2.polylines(image, [polygon], True, colour, 1, cv2.LINE_AA)
            x, y = polygon.min(axis=0)
            cv2.putText(image, f"{zone.name} ({zone.kind})", (int(x) + 4, int(y) + 14), cv2.FONT_HERSHEY_SIMPLEX,
                        0.45, colour, 1, cv2.LINE_AA)
