"""One camera's messages to an MQTT broker, with Home Assistant discovery; the video never waits for it.

The supervisor keeps one connection per camera (its own will, its own
queue), in the process that outlives the cameras: a camera that crashes
loses none of the messages waiting for the broker.

Topics, under ``<prefix>/<camera>/``:

- ``events``: each alert and each person leaving view, the --events line with "camera" and "at" added (QoS 1);
- ``state``: people in view, totals by label, compliance, fps, stream up or down (retained, QoS 1);
- ``snapshot``: the last alert's snapshot, a JPEG, for a camera that saves them (retained);
- ``availability``: "online" while the camera starts or streams, "offline" while its stream is down, when
  the service stops, and as the last will when the service's process dies (retained).

With a discovery prefix, Home Assistant's configs are published retained
under ``<discovery_prefix>/sensor|binary_sensor/mask_detector_<camera>/<what>/config``,
and again whenever Home Assistant says "online" on ``<discovery_prefix>/status``.

A broker that is away (down at start, restarting) costs the video nothing:
messages wait in a bounded queue, the oldest dropped and counted when it is
full, and go out, in order, once the connection is back.
"""

import json
import secrets
import socket
import ssl
import sys
import threading
from collections import deque

import paho.mqtt.client as paho

from mask_detector import installed_version
from mask_detector.files import safe_name
from mask_detector.service.config import entity_slug

# Home Assistant entities of each camera: (component, what, name, template on the state message, options).
# Totals only grow (state_class total_increasing: statistics and the energy-style graphs take them as counters);
# diagnostic entities show apart from the main ones on the device's page.
PEOPLE_NOW = {"unit_of_measurement": "people", "state_class": "measurement"}
PEOPLE_TOTAL = {"unit_of_measurement": "people", "state_class": "total_increasing"}
# None before anyone was judged: the sensor is then unknown, not 0 %.
PERCENT = {"unit_of_measurement": "%", "state_class": "measurement", "suggested_display_precision": 1}
SENSORS = (
    ("sensor", "people_in_view", "People in view", "{{ value_json.people_in_view }}", PEOPLE_NOW),
    ("sensor", "people_without_mask", "People without a mask in view",
     "{{ value_json.people_without_mask_in_view }}", PEOPLE_NOW),
    ("sensor", "people", "People", "{{ value_json.people }}", PEOPLE_TOTAL),
    ("sensor", "people_no_mask", "People without a mask", "{{ value_json.people_no_mask }}", PEOPLE_TOTAL),
    ("sensor", "people_incorrect", "People wearing a mask wrongly", "{{ value_json.people_incorrect }}",
     PEOPLE_TOTAL),
    ("sensor", "alerts", "Alerts", "{{ value_json.alerts }}", {"state_class": "total_increasing"}),
    ("sensor", "compliance", "Mask compliance", "{{ value_json.compliance_percent }}", PERCENT),
    ("binary_sensor", "alert", "No-mask alert", "{{ value_json.alert }}", {"device_class": "problem"}),
    ("sensor", "fps", "Frames per second", "{{ value_json.fps }}",
     {"unit_of_measurement": "fps", "state_class": "measurement", "suggested_display_precision": 1,
      "entity_category": "diagnostic"}),
    # Read whatever availability says, so that a stream that is down shows as disconnected, not unavailable.
    ("binary_sensor", "stream", "Stream", "{{ 'ON' if value_json.stream == 'up' else 'OFF' }}",
     {"device_class": "connectivity", "entity_category": "diagnostic", "availability": False}),
)
# A state message comes every state_every seconds: an entity not updated for this many periods is shown unavailable
# (the service died without its last will reaching the broker).
EXPIRE_PERIODS = 3


def topics(prefix, camera):
    """A camera's topics: its name made safe (no /, + or #, no space: files.safe_name)."""
    base = f"{prefix}/{safe_name(camera)}"
    return {"events": f"{base}/events", "state": f"{base}/state", "availability": f"{base}/availability",
            "snapshot": f"{base}/snapshot"}


def zone_sensors(zones):
    """Home Assistant entities of each count zone, as SENSORS gives a camera's: its people and its compliance."""
    sensors = []
    for zone in zones:
        value = f"value_json.zones['{zone}']"
        what = f"zone_{entity_slug(zone)}"
        sensors += [
            ("sensor", f"{what}_people", f"People in {zone}", f"{{{{ {value}.people }}}}", PEOPLE_TOTAL),
            ("sensor", f"{what}_compliance", f"Mask compliance in {zone}", f"{{{{ {value}.compliance_percent }}}}",
             PERCENT),
        ]
    return tuple(sensors)


def discovery_configs(settings, camera, state_every=10.0, zones=(), snapshots=False):
    """{topic: config} of Home Assistant's MQTT discovery for ``camera``'s entities, and its count ``zones``'; none
    without a discovery prefix. ``state_every``: the seconds between state messages, which entities expire after a
    few of; ``snapshots``: whether the camera saves its alerts' snapshots, which an image entity then shows."""
    if not settings.discovery_prefix:
        return {}
    names = topics(settings.prefix, camera)
    node = f"mask_detector_{safe_name(camera)}"
    origin = {"name": "face-mask-detector"}
    device = {"identifiers": [node], "name": f"Mask detector {camera}", "manufacturer": "face-mask-detector",
              "model": "MobileNetV2 mask classifier"}
    version = installed_version()
    if version:
        origin["sw_version"] = device["sw_version"] = version

    def entity(component, what, name):
        """What every entity's config says: its names, where it reads whether it is there, its device."""
        return {"name": name, "unique_id": f"{node}_{what}",
                "default_entity_id": f"{component}.{entity_slug(node)}_{what}",
                "availability_topic": names["availability"], "device": device, "origin": origin}

    configs = {}
    for component, what, name, template, options in SENSORS + zone_sensors(zones):
        options = dict(options)
        config = entity(component, what, name) | {"state_topic": names["state"], "value_template": template,
                                                  "expire_after": round(EXPIRE_PERIODS * state_every)}
        if not options.pop("availability", True):
            del config["availability_topic"]
        if component == "binary_sensor":
            config |= {"payload_on": "ON", "payload_off": "OFF"}
        configs[f"{settings.discovery_prefix}/{component}/{node}/{what}/config"] = config | options
    if snapshots:
        configs[f"{settings.discovery_prefix}/image/{node}/last_alert/config"] = entity(
            "image", "last_alert", "Last alert") | {"image_topic": names["snapshot"], "content_type": "image/jpeg"}
    return configs


def connection_problem(error, settings):
    """What a failed connection to the broker says of the site's settings, in words; "" for a broker that is
    only away (refused, timed out), which is waited for in silence and counted."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({error.verify_message}); give its CA certificate as ca_file"
    # A broker that speaks plain MQTT on that port drops the connection at the handshake's first message.
    if isinstance(error, ssl.SSLError) or settings.tls and isinstance(error, ConnectionResetError):
        reason = getattr(error, "reason", None) or error.strerror or error
        return (f"the TLS handshake failed ({reason}); check that port {settings.port} is the broker's TLS "
                f"listener, or set tls = false")
    if isinstance(error, socket.gaierror):
        return f"cannot find the host {settings.host} ({error.strerror})"
    return ""


class MqttPublisher:
    """A camera's connection to the broker of ``settings`` (config.MqttSettings), kept on paho's own thread."""

    def __init__(self, settings, camera, client_id=None, state_every=10.0, zones=(), snapshots=False):
        self.settings = settings
        self.camera = camera
        self.snapshots = snapshots  # whether the camera saves snapshots: an image entity shows the last
        self.zones = tuple(zones)  # the camera's count zones, each with entities of its own
        self.state_every = state_every  # seconds between state messages, for the discovery configs' expiry
        self.topics = topics(settings.prefix, camera)
        self.dropped = 0  # messages dropped because the queue was full
        self.connected = False
        self.refused = ""  # why the broker refused us, once it did
        self._pending = deque()
        self._lock = threading.Lock()
        self._retained = {}  # topic -> payload: the latest state, republished on every connection
        self._available = True  # what availability says while connected: the camera is starting or streaming
        # A client id of its own: a broker drops a client when another connects with the same id, and two services
        # (or a service and its restarted self) with a camera of one name would take turns throwing each other off.
        client_id = client_id or f"mask-detector-{safe_name(camera)}-{secrets.token_hex(4)}"
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self._client.tls_set(ca_certs=settings.ca_file or None)
        self._client.will_set(self.topics["availability"], "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._told = ""  # the last cause of a failed connection said
        self._client.on_disconnect = self._on_disconnect
        # connect_async: a broker that is down at start is tried again in the background, never waited for.
        self._client.connect_async(settings.host, settings.port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            if not self.refused:
                print(f"warning: MQTT broker {self.settings.host}:{self.settings.port} refused camera {self.camera}: "
                      f"{reason_code}", file=sys.stderr, flush=True)
            self.refused = str(reason_code)
            return
        self.refused = ""
        client.publish(self.topics["availability"], "online" if self._available else "offline", qos=1, retain=True)
        self._announce(client)
        if self.settings.discovery_prefix:
            # Home Assistant says "online" here when it starts: the configs and the state go to it again.
            status = f"{self.settings.discovery_prefix}/status"
            client.message_callback_add(status, self._on_home_assistant_status)
            client.subscribe(status, qos=1)
        # What waited goes first, in order; what comes meanwhile keeps waiting behind it, until none is left
        # and the connection is declared open (checked and set under the lock that senders take).
        while True:
            with self._lock:
                waiting = list(self._pending)
                self._pending.clear()
                if not waiting:
                    self.connected = True
                    return
            for topic, payload in waiting:
                client.publish(topic, payload, qos=1)

    def _announce(self, client):
        """Home Assistant's discovery configs, then the latest retained messages (state, snapshot), retained."""
        for topic, config in discovery_configs(self.settings, self.camera, self.state_every, self.zones,
                                               self.snapshots).items():
            client.publish(topic, json.dumps(config), qos=1, retain=True)
        with self._lock:
            retained = dict(self._retained)
        for topic, payload in retained.items():
            client.publish(topic, payload, qos=1, retain=True)

    def _on_home_assistant_status(self, client, userdata, message):
        if message.payload == b"online":
            self._announce(client)

    def _on_connect_fail(self, client, userdata):
        # paho calls this while it handles the error: the error is the one being handled.
        reason = connection_problem(sys.exc_info()[1], self.settings)
        if reason and reason != self._told:
            self._told = reason
            print(f"warning: MQTT broker {self.settings.host}:{self.settings.port}, camera {self.camera}: {reason}; "
                  f"trying again", file=sys.stderr, flush=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self._lock:
            self.connected = False

    def _send(self, topic, payload, retain=False):
        with self._lock:
            if not self.connected:
                if not retain:  # the latest state is sent again on connecting anyway
                    self._wait(topic, payload)
                return
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS and not retain:
            with self._lock:
                self._wait(topic, payload)

    def _wait(self, topic, payload):
        """Keep a message for when the broker is back (the lock held); the oldest goes when the queue is full."""
        if len(self._pending) >= self.settings.queue:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append((topic, payload))

    def event(self, event):
        self._send(self.topics["events"], json.dumps(event))

    def state(self, state):
        self._retain(self.topics["state"], json.dumps(state))

    def snapshot(self, jpeg):
        """The last alert's snapshot (JPEG bytes), retained: Home Assistant's image entity shows it."""
        self._retain(self.topics["snapshot"], jpeg)

    def _retain(self, topic, payload):
        """Send ``payload`` retained, and keep it to send again on every connection."""
        with self._lock:
            self._retained[topic] = payload
        self._send(topic, payload, retain=True)

    def available(self, available):
        """Say the camera is online (starting or streaming) or offline (its stream is down), when that changes."""
        if available != self._available:
            self._available = available
            self._send(self.topics["availability"], "online" if available else "offline", retain=True)

    def waiting(self):
        """Messages not yet handed to the broker's connection."""
        with self._lock:
            return len(self._pending) if self._pending or not self.connected else 0

    def close(self, online=False):
        """Say the camera is offline (unless ``online``), then disconnect; what still waits is counted as dropped."""
        with self._lock:
            self.dropped += len(self._pending)
            self._pending.clear()
        if self.connected:
            self._client.publish(self.topics["availability"], "online" if online else "offline", qos=1,
                                 retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()
