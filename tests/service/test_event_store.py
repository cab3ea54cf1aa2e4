"""mask_detector/service/event_store.py on a real SQLite file: events kept across a restart, filtered and paged,
statistics by clock hour, and a camera's rows forgotten past its days."""

import time

import pytest

from mask_detector.service.event_store import EventStore, moment


def alert(camera, at, label="no_mask", track_id=1, **files):
    return {"camera": camera, "at": at, "event": "alert", "track_id": track_id, "label": label} | files


def person(camera, at, label, judged=True):
    return {"camera": camera, "at": at, "event": "person", "track_id": 2, "label": label, "judged": judged}


def test_events_outlive_the_store_and_come_back_filtered_and_paged(tmp_path):
    store = EventStore(tmp_path / "events.db")
    first = store.add_event(alert("door", 100.0, snapshot="a.jpg", clip="a.mp4"))
    store.add_event(person("door", 101.0, "mask"))
    store.close()
    store = EventStore(tmp_path / "events.db")  # the service started again
    later = store.add_event(alert("hall", 102.0, "incorrect"))
    store.add_event(person("hall", 103.0, "no_mask", judged=False))
    assert later > first
    events, total = store.events()
    assert total == 4 and [e["at"] for e in events] == [103.0, 102.0, 101.0, 100.0]
    assert store.event(first) == {"id": first} | alert("door", 100.0, snapshot="a.jpg", clip="a.mp4")
    assert [e["at"] for e in store.events(camera="door")[0]] == [101.0, 100.0]
    assert [e["at"] for e in store.events(kind="alert")[0]] == [102.0, 100.0]
    assert [e["at"] for e in store.events(label="not_judged")[0]] == [103.0]  # a person never judged
    assert [e["at"] for e in store.events(after=101.0, before=103.0)[0]] == [102.0, 101.0]
    page, total = store.events(limit=2, offset=2)
    assert total == 4 and [e["at"] for e in page] == [101.0, 100.0]
    assert store.last_alert("door")["id"] == first and store.last_alert("nowhere") is None
    assert store.event(999) is None


def test_people_and_compliance_by_clock_hour_from_the_statistics_lines(tmp_path):
    store = EventStore(tmp_path / "events.db")
    now = 10 * 3600 + 1800.0  # half past ten
    line = {"camera": "door", "seconds": 60.0, "people_mask": 3, "people_no_mask": 1, "people_incorrect": 0,
            "people_not_judged": 1}
    store.add_stats(line | {"time": now - 600})
    store.add_stats(line | {"time": now - 60})
    store.add_stats(line | {"time": now - 3600} | {"people_mask": 0})  # the hour before
    store.add_stats(line | {"time": now - 60, "camera": "hall"})
    hours = store.hourly("door", 3, now)
    assert [hour["hour"] for hour in hours] == [8 * 3600, 9 * 3600, 10 * 3600]
    assert hours[0]["people"] == 0 and hours[0]["compliance"] is None
    assert (hours[1]["people"], hours[1]["compliance"]) == (2, 0.0)
    assert (hours[2]["people"], hours[2]["people_mask"], hours[2]["compliance_percent"]) == (10, 6, 75.0)


def test_a_camera_s_rows_past_its_days_are_forgotten_and_only_its_own(tmp_path):
    store = EventStore(tmp_path / "events.db")
    now = time.time()
    store.add_event(alert("door", now - 3 * 86400))
    store.add_event(alert("door", now - 60))
    store.add_event(alert("hall", now - 3 * 86400))
    store.add_stats({"camera": "door", "time": now - 3 * 86400, "seconds": 60.0})
    assert store.forget_before("door", now - 2 * 86400) == 1
    assert sorted((e["camera"], e["at"] < now - 86400) for e in store.events()[0]) == [("door", False),
                                                                                     ("hall", True)]
    assert store.hourly("door", 24 * 4, now)[0]["people"] == 0


def test_times_are_unix_seconds_or_iso_8601():
    assert moment("1796596112.5") == 1796596112.5
    assert moment("2026-12-06T08:30:00+00:00") == 1796545800.0
    with pytest.raises(ValueError, match="ISO 8601"):
        moment("yesterday")
