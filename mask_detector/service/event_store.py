"""The service's events and statistics in SQLite (Python's sqlite3), for the web page and its API.

Every event the supervisor writes to --events is also a row here, as it
comes, with the snapshot and clip it names; every statistics line too. The
file outlives the service: a service started again adds to it. A camera's
``keep_days`` removes its rows past that age, as its own sweep removes their
files (privacy.OwnFiles, which deletes only the files it wrote).

One connection, shared by the supervisor's thread (which writes) and the
web server's (which reads), under a lock: a site's few events a second are
nothing to SQLite.
"""

import json
import sqlite3
import threading
import time
from datetime import datetime

from mask_detector.counts import PeopleCounts
from mask_detector.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,           -- alert or person
    at REAL NOT NULL,             -- Unix time
    label TEXT,                   -- the alert's label; a person's final label, not_judged if never judged
    track_id INTEGER,
    snapshot TEXT,
    clip TEXT,
    body TEXT NOT NULL            -- the event as written to --events
);
CREATE INDEX IF NOT EXISTS events_by_camera ON events (camera, at);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at);
CREATE TABLE IF NOT EXISTS stats (
    camera TEXT NOT NULL,
    at REAL NOT NULL,             -- the end of the line's period, Unix time
    seconds REAL NOT NULL,
    mask INTEGER NOT NULL, no_mask INTEGER NOT NULL, incorrect INTEGER NOT NULL, not_judged INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS stats_by_camera ON stats (camera, at);
"""
KINDS = ("alert", "person")
LABELS = ("mask", "no_mask", "incorrect", "not_judged")
MOST_EVENTS = 500  # a page of events at most


def moment(text):
    """A time given to the API: Unix seconds, or an ISO 8601 date and time (local time when it has no zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"expected Unix seconds or an ISO 8601 time such as 2026-12-06T08:30, got {text!r}") from None


class EventStore:
    """Events and statistics lines in the SQLite file ``path``."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.executescript(SCHEMA)
        except sqlite3.Error as error:
            raise UserError(f"cannot use the database {self.path}: {error}") from None
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def close(self):
        with self._lock:
            self._db.close()

    def add_event(self, event):
        """An event as the supervisor writes it (with camera and at); its row id."""
        kind = event["event"]
        label = event.get("label")
        if kind == "person" and not event.get("judged"):
            label = "not_judged"
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (camera, kind, at, label, track_id, snapshot, clip, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event["camera"], kind, event["at"], label, event.get("track_id"), event.get("snapshot"),
                 event.get("clip"), json.dumps(event)))
            return cursor.lastrowid

    def add_stats(self, line):
        """A statistics line as the supervisor writes it to --stats."""
        with self._lock:
            self._db.execute(
                "INSERT INTO stats (camera, at, seconds, mask, no_mask, incorrect, not_judged) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (line["camera"], line["time"], line["seconds"],
                 *(line.get(f"people_{label}", 0) for label in LABELS)))

    def forget_before(self, camera, oldest):
        """Remove ``camera``'s events and statistics from before ``oldest`` (Unix time); the events removed."""
        with self._lock:
            removed = self._db.execute("DELETE FROM events WHERE camera = ? AND at < ?", (camera, oldest)).rowcount
            self._db.execute("DELETE FROM stats WHERE camera = ? AND at < ?", (camera, oldest))
        return removed

    def events(self, camera=None, kind=None, label=None, after=None, before=None, limit=50, offset=0):
        """(the events that match, newest first, a page of them; how many match in all)."""
        where, values = [], []
        for column, value in (("camera", camera), ("kind", kind), ("label", label)):
            if value:
                where.append(f"{column} = ?")
                values.append(value)
        if after is not None:
            where.append("at >= ?")
            values.append(after)
        if before is not None:
            where.append("at < ?")
            values.append(before)
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM events{condition}", values).fetchone()[0]
            rows = self._db.execute(f"SELECT * FROM events{condition} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
                                    [*values, min(limit, MOST_EVENTS), offset]).fetchall()
        return [_event(row) for row in rows], total

    def event(self, event_id):
        """The event of row ``event_id``, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        return _event(row) if row else None

    def last_alert(self, camera):
        events, _ = self.events(camera=camera, kind="alert", limit=1)
        return events[0] if events else None

    def people_since(self, camera, since):
        """The PeopleCounts of ``camera``'s people who left view since ``since`` (Unix time)."""
        counts = PeopleCounts()
        with self._lock:
            rows = self._db.execute("SELECT label, count(*) FROM events WHERE camera = ? AND kind = 'person' "
                                    "AND at >= ? GROUP BY label", (camera, since)).fetchall()
        for label, n in rows:
            if label in LABELS:
                setattr(counts, label, getattr(counts, label) + n)
        return counts

    def hourly(self, camera, hours, now=None):
        """The statistics of ``camera``'s last ``hours`` hours, an entry per clock hour, oldest first:
        {"hour": its start (Unix time), "people", "people_<label>", "compliance", "compliance_percent"}."""
        now = time.time() if now is None else now
        first = (int(now) // 3600 - hours + 1) * 3600
        by_hour = {first + 3600 * i: PeopleCounts() for i in range(hours)}
        with self._lock:
            rows = self._db.execute(
                "SELECT CAST(at / 3600 AS INTEGER) * 3600, sum(mask), sum(no_mask), sum(incorrect), sum(not_judged) "
                "FROM stats WHERE camera = ? AND at >= ? GROUP BY 1", (camera, first)).fetchall()
        for hour, *numbers in rows:
            if hour in by_hour:
                by_hour[hour] = PeopleCounts(*numbers)
        return [{"hour": hour} | counts.to_json() | counts.compliance_json() for hour, counts in by_hour.items()]


def _event(row):
    """An event row as the API gives it: the event as written, with its id."""
    return {"id": row["id"]} | json.loads(row["body"])
