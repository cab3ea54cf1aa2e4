"""mask_detector/service/mqtt.py: topics, Home Assistant discovery, and a connection that never stalls the video."""

from mask_detector.service.config import MqttSettings
from mask_detector.service.mqtt import MqttPublisher, discovery_configs, topics
from mask_detector.service.state import CameraState
from support.broker import Mosquitto, Subscriber, free_port, retained
from support.scripts import run_script, script_env, wait_until
from support.service import PREFIX, lines, photo_clip


def test_each_camera_has_its_own_topics():
    assert topics("site", "door") == {"events": "site/door/events", "state": "site/door/state",
                                      "availability": "site/door/availability"}


def test_every_discovered_entity_reads_a_field_of_the_state():
    settings = MqttSettings(prefix=PREFIX)
    configs = discovery_configs(settings, "door")
    assert len(configs) == 4
    state = CameraState("door").message(now=0)
    for topic, config in configs.items():
        component = topic.split("/")[1]
        assert topic.startswith("homeassistant/") and topic.endswith("/config")
        assert component in ("sensor", "binary_sensor")
        assert config["state_topic"] == f"{PREFIX}/door/state"
        assert config["availability_topic"] == f"{PREFIX}/door/availability"
        field = config["value_template"].removeprefix("{{ value_json.").removesuffix(" }}")
        assert field in state, field
    assert discovery_configs(MqttSettings(discovery_prefix=""), "door") == {}


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
