"""mask_detector/service/mqtt.py: topics, Home Assistant discovery, and a connection that never stalls the video."""

import dataclasses
import json

import jinja2

from mask_detector.counts import PeopleCounts
from mask_detector.service.config import MqttSettings
from mask_detector.service.mqtt import MqttPublisher, discovery_configs, topics
from mask_detector.service.state import CameraState
from support.broker import Mosquitto, Subscriber, free_port, retained
from support.scripts import run_script, script_env, wait_until
from support.service import PREFIX, lines, photo_clip


def test_each_camera_has_its_own_topics():
    assert topics("site", "door") == {"events": "site/door/events", "state": "site/door/state",
                                      "availability": "site/door/availability", "snapshot": "site/door/snapshot"}


def a_state(compliance=True):
    """A camera's state message with people counted and an alert raised (none judged: compliance unknown)."""
    state = CameraState("door")
    state.report = dataclasses.replace(state.report, stream="up", fps=9.87, people_in_view=2,
                                       people_without_mask_in_view=1)
    for label in ("mask", "mask", "no_mask", "incorrect") if compliance else ():
        state.count_event({"event": "person", "label": label, "judged": True})
    state.count_event({"event": "alert", "at": 100.0})
    return state.message(now=110.0)


def rendered(config, message):
    """What Home Assistant makes of a state message with an entity's config: its template rendered with Jinja2
    against the parsed payload (value_json) and the raw one (value), as Home Assistant renders it."""
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(config["value_template"])
    return template.render(value_json=message, value=json.dumps(message))


def test_home_assistant_reads_each_entity_from_a_real_state_message():
    configs = discovery_configs(MqttSettings(prefix=PREFIX), "door", state_every=10.0)
    message = a_state()
    values = {}
    for topic, config in configs.items():
        component, node, what = topic.split("/")[1:4]
        assert topic == f"homeassistant/{component}/mask_detector_door/{what}/config"
        assert config["unique_id"] == f"mask_detector_door_{what}" and "object_id" not in config
        assert config["default_entity_id"] == f"{component}.mask_detector_door_{what}"
        assert config["state_topic"] == f"{PREFIX}/door/state" and config["expire_after"] == 30
        assert config["origin"]["name"] == "face-mask-detector"
        value = rendered(config, message)
        if component == "binary_sensor":
            assert value in (config["payload_on"], config["payload_off"]), (what, value)
        else:
            assert float(value) >= 0, (what, value)  # a number, as a sensor with a unit needs
        values[what] = value
    assert values == {"people_in_view": "2", "people_without_mask": "1", "people": "4", "people_no_mask": "1",
                      "people_incorrect": "1", "alerts": "1", "compliance": "50.0", "alert": "ON", "fps": "9.87",
                      "stream": "ON"}
    by_what = {topic.split("/")[3]: config for topic, config in configs.items()}
    assert by_what["compliance"]["unit_of_measurement"] == "%"
    assert by_what["compliance"]["suggested_display_precision"] == 1
    assert {what for what, config in by_what.items() if config.get("state_class") == "total_increasing"} == {
        "people", "people_no_mask", "people_incorrect", "alerts"}
    assert {what for what, config in by_what.items() if config.get("entity_category") == "diagnostic"} == {
        "fps", "stream"}
    assert by_what["stream"]["device_class"] == "connectivity" and "availability_topic" not in by_what["stream"]
    assert all(config["availability_topic"] == f"{PREFIX}/door/availability"
               for what, config in by_what.items() if what != "stream")
    # Before anyone was judged, compliance is None, which Home Assistant shows as unknown (its "None" payload).
    assert rendered(by_what["compliance"], a_state(compliance=False)) == "None"
    assert rendered(by_what["stream"], a_state() | {"stream": "down"}) == "OFF"
    assert discovery_configs(MqttSettings(discovery_prefix=""), "door") == {}
    # A camera that saves snapshots has an image entity of its last alert's.
    image = discovery_configs(MqttSettings(prefix=PREFIX), "door", snapshots=True)[
        "homeassistant/image/mask_detector_door/last_alert/config"]
    assert (image["image_topic"], image["content_type"], image["default_entity_id"]) == (
        f"{PREFIX}/door/snapshot", "image/jpeg", "image.mask_detector_door_last_alert")
    assert not any("/image/" in topic for topic in configs)
    # A name with spaces, a slash, + or # and accents: topics, ids and entity ids take it made safe; the device
    # shows it as written.
    name = "Café #2 / Front door+"
    assert topics(PREFIX, name)["state"] == f"{PREFIX}/Cafe-2-Front-door/state"
    front = discovery_configs(MqttSettings(prefix=PREFIX), name)
    config = front["homeassistant/sensor/mask_detector_Cafe-2-Front-door/people/config"]
    assert config["default_entity_id"] == "sensor.mask_detector_cafe_2_front_door_people"
    assert config["unique_id"] == "mask_detector_Cafe-2-Front-door_people"
    assert config["state_topic"] == f"{PREFIX}/Cafe-2-Front-door/state"
    assert config["device"]["name"] == f"Mask detector {name}"


def test_each_count_zone_has_its_people_and_compliance_in_home_assistant():
    state = CameraState("door", zones={"front-door": PeopleCounts(), "till": PeopleCounts()})
    for label, zones in (("mask", ["front-door"]), ("no_mask", ["front-door", "till"])):
        state.count_event({"event": "person", "label": label, "judged": True, "zones": zones})
    configs = discovery_configs(MqttSettings(prefix=PREFIX), "door", zones=state.zones)
    zoned = {topic.split("/")[3]: config for topic, config in configs.items() if "/zone_" in topic}
    assert sorted(zoned) == ["zone_front_door_compliance", "zone_front_door_people", "zone_till_compliance",
                             "zone_till_people"]
    values = {what: rendered(config, state.message(now=0)) for what, config in zoned.items()}
    assert values == {"zone_front_door_people": "2", "zone_front_door_compliance": "50.0", "zone_till_people": "1",
                      "zone_till_compliance": "0.0"}
    assert zoned["zone_till_people"]["default_entity_id"] == "sensor.mask_detector_door_zone_till_people"
    assert zoned["zone_till_people"]["state_class"] == "total_increasing"


def test_the_configs_go_again_when_home_assistant_comes_online(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        publisher = MqttPublisher(MqttSettings(host="127.0.0.1", port=broker.port, prefix=PREFIX), "door")
        subscriber = Subscriber(broker.port, "homeassistant/sensor/mask_detector_door/people/config",
                                client_id="discovery-subscriber")
        try:
            assert wait_until(lambda: publisher.connected and subscriber.client.is_connected(), 30)
            assert wait_until(lambda: len(subscriber.messages) == 1, 30)  # the retained config
            home_assistant = Subscriber(broker.port, "unused/topic", client_id="home-assistant")
            assert wait_until(lambda: home_assistant.client.is_connected(), 30)
            home_assistant.client.publish("homeassistant/status", "online", qos=1)
            assert wait_until(lambda: len(subscriber.messages) == 2, 30), subscriber.messages
            assert subscriber.on("homeassistant/sensor/mask_detector_door/people/config")[1]["name"] == "People"
            home_assistant.close()
        finally:
            subscriber.close()
            publisher.close()


def test_messages_wait_for_a_broker_that_is_away_and_go_out_in_order(tmp_path):
    port = free_port()
    publisher = MqttPublisher(MqttSettings(host="127.0.0.1", port=port, prefix=PREFIX, queue=3), "door")
    try:
        for number in range(5):  # the broker is not there yet: the oldest two are dropped
            publisher.event({"event": "alert", "number": number})
        assert publisher.dropped == 2 and publisher.waiting() == 3
        with Mosquitto(tmp_path / "broker", port=port) as broker:
            subscriber = Subscriber(broker.port, f"{PREFIX}/#", client_id="queue-subscriber")
            assert wait_until(lambda: subscriber.client.is_connected(), 30)
            # The publisher retries on its own (its reconnect delay is 1 s, growing): its queue then goes out.
            assert wait_until(lambda: publisher.waiting() == 0, 60)
            publisher.event({"event": "alert", "number": 5})
            assert wait_until(lambda: len(subscriber.on(f"{PREFIX}/door/events")) == 4, 30), subscriber.messages
            assert [e["number"] for e in subscriber.on(f"{PREFIX}/door/events")] == [2, 3, 4, 5]
            publisher.close()
            got = retained(broker.port, lambda got: got.get(f"{PREFIX}/door/availability") == "offline")
            assert got[f"{PREFIX}/door/availability"] == "offline"
            subscriber.close()
    finally:
        publisher.close()


def test_a_wrong_password_never_stops_the_video(samples, tmp_path):
    with Mosquitto(tmp_path / "broker", users={"detector": "right"}) as broker:
        clip = photo_clip(samples, tmp_path / "clip.mp4")
        site = tmp_path / "site.toml"
        site.write_text(f"""
[service]
events = "events.jsonl"
[mqtt]
host = "127.0.0.1"
port = {broker.port}
username = "detector"
password_env = "BROKER_PASSWORD"
[[camera]]
name = "door"
source = "{clip}"
""")
        result = run_script("detect_mask_video.py", "--config", site, cwd=tmp_path,
                            env=script_env(BROKER_PASSWORD="wrong"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "refused camera door" in result.stderr and "wrong" not in result.stdout + result.stderr
        assert [e["event"] for e in lines(tmp_path / "events.jsonl")].count("alert") == 1
        assert retained(broker.port, lambda got: False, limit=2, username="detector", password="right") == {}


def test_two_services_with_a_camera_of_one_name_stay_connected(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        subscriber = Subscriber(broker.port, f"{PREFIX}/door/availability", client_id="availability-subscriber")
        assert wait_until(lambda: subscriber.client.is_connected(), 30)
        settings = MqttSettings(host="127.0.0.1", port=broker.port, prefix=PREFIX)
        first, second = MqttPublisher(settings, "door"), MqttPublisher(settings, "door")
        try:
            assert wait_until(lambda: first.connected and second.connected, 30)
            # With one client id, each connection threw the other off, and each came back a second later.
            wait_until(lambda: len(subscriber.on(f"{PREFIX}/door/availability")) > 2, 5)
            assert first.connected and second.connected
            assert subscriber.on(f"{PREFIX}/door/availability") == ["online", "online"]
        finally:
            first.close(online=True)
            second.close(online=True)
            subscriber.close()


def test_tls_against_a_plain_broker_is_one_line_naming_the_cause(samples, tmp_path):
    """Once said only as "the broker was away" at the end."""
    with Mosquitto(tmp_path / "broker") as broker:
        clip = photo_clip(samples, tmp_path / "clip.mp4")
        site = tmp_path / "site.toml"
        site.write_text(f"[mqtt]\nhost = '127.0.0.1'\nport = {broker.port}\ntls = true\n"
                        f"[[camera]]\nname = 'door'\nsource = '{clip}'\n")
        result = run_script("detect_mask_video.py", "--config", site, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    told = [line for line in result.stderr.splitlines() if "TLS handshake failed" in line]
    assert len(told) == 1 and f"port {broker.port} is the broker's TLS listener" in told[0], result.stderr
