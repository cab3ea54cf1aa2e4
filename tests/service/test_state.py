"""mask_detector/service/state.py: a camera's state over its runs, counted from its events, and the message."""

from mask_detector.counts import PeopleCounts
from mask_detector.service.state import ALERT_HOLD_SECONDS, CameraReport, CameraState, StatePublishing


def person(label, judged=True):
    return {"event": "person", "label": label, "judged": judged}


def test_people_and_alerts_are_counted_from_the_events():
    state = CameraState("door")
    for event in (person("mask"), person("mask"), person("no_mask"), person("no_mask", judged=False),
                  person("incorrect"), {"event": "alert", "at": 1000.0}, {"event": "alert", "at": 1010.0}):
        state.count_event(event)
    assert state.people == PeopleCounts(mask=2, no_mask=1, incorrect=1, not_judged=1)
    assert (state.alerts, state.last_alert) == (2, 1010.0)
    message = state.message(now=1010.0 + ALERT_HOLD_SECONDS - 1)
    assert (message["people"], message["people_mask"], message["people_no_mask"], message["people_incorrect"],
            message["people_not_judged"]) == (5, 2, 1, 1, 1)
    assert (message["compliance"], message["compliance_percent"]) == (0.5, 50.0)  # 2 of the 4 judged
    assert (message["alerts"], message["alert"]) == (2, "ON")
    assert state.message(now=1010.0 + ALERT_HOLD_SECONDS)["alert"] == "OFF"


def test_no_one_judged_has_no_compliance():
    state = CameraState("door")
    state.count_event(person("no_mask", judged=False))
    message = state.message(now=0)
    assert (message["people"], message["compliance"], message["compliance_percent"]) == (1, None, None)


def test_each_count_zone_counts_the_people_seen_in_it():
    state = CameraState("door", zones={"entrance": PeopleCounts(), "till": PeopleCounts()})
    assert "zones" not in CameraState("hall").message(now=0)  # a camera without count zones says none
    for event in (person("mask") | {"zones": ["entrance"]}, person("no_mask") | {"zones": ["entrance", "till"]},
                  person("mask")):
        state.count_event(event)
    zones = state.message(now=0)["zones"]
    assert zones["entrance"] == {"people": 2, "people_mask": 1, "people_no_mask": 1, "people_incorrect": 0,
                                 "people_not_judged": 0, "compliance": 0.5, "compliance_percent": 50.0}
    assert (zones["till"]["people"], zones["till"]["compliance"]) == (1, 0.0)
    assert state.message(now=0)["people"] == 3


def test_frames_go_on_across_runs_and_the_stream_is_the_latest_run_s():
    state = CameraState("door")
    state.report = CameraReport(stream="up", fps=9.5, frames=100, dropped=3, frames_received=104, reconnects=1,
                                people_in_view=2, people_without_mask_in_view=1)
    state.report.count_latency(0.004)
    state.run_ended("down")  # killed: the next run counts from 0
    assert state.message(now=0)["stream"] == "down" and state.message(now=0)["people_in_view"] == 0
    state.report = CameraReport(stream="up", fps=10.0, frames=20, frames_received=21)
    state.report.count_latency(0.03)
    message = state.message(now=0)
    assert (message["frames"], message["dropped"], message["frames_received"], message["reconnects"]) == (
        120, 3, 125, 1)
    assert (message["stream"], message["fps"]) == ("up", 10.0)
    totals = state.totals
    assert sum(totals.latency) == 2 and abs(totals.latency_sum - 0.034) < 1e-9
    assert totals.latency[1] == 1 and totals.latency[4] == 1  # 0.004 s under 0.005; 0.03 s under 0.05


def test_a_state_is_news_when_more_than_its_frames_changed():
    state = CameraState("door")
    earlier = CameraState("door")
    state.report.frames = 50
    state.report.fps = 12.0
    assert not state.changed_from(earlier)
    state.count_event(person("mask"))
    assert state.changed_from(earlier)
    assert state.changed_from(None)


class Publisher:
    def __init__(self):
        self.sent = []

    def state(self, message):
        self.sent.append(message)


def test_a_state_is_published_when_it_is_news_or_due():
    publisher = Publisher()
    publishing = StatePublishing(publisher, every=3600)
    state = CameraState("door")
    publishing.offer(state)
    state.report.frames = 10
    publishing.offer(state)  # only frames moved, and not due: not sent
    state.count_event({"event": "alert", "at": 5.0})
    publishing.offer(state)  # the state changed in place since the last offer: still compared with what was sent
    assert [message["alerts"] for message in publisher.sent] == [0, 1]
    publishing = StatePublishing(publisher, every=0)
    publishing.offer(state)
    publishing.offer(state)
    assert len(publisher.sent) == 4


def test_a_camera_started_again_is_down_until_frames_come():
    """Once, a camera that never connected said "starting" for ever, and stayed available."""
    state = CameraState("door")
    assert (state.message(now=0)["stream"], state.available) == ("starting", True)
    state.restarts += 1
    state.run_ended("down")
    state.report = CameraReport()  # the next run, loading, its source not open yet
    assert (state.message(now=0)["stream"], state.available) == ("down", False)
    state.report = CameraReport(stream="up", frames=1, frames_received=1)
    assert (state.message(now=0)["stream"], state.available) == ("up", True)
