"""A real Mosquitto broker on a free local port, and a real subscriber that keeps what it gets."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from support.scripts import wait_until


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mosquitto:
    """Mosquitto on 127.0.0.1:``port``, which can be stopped and started again on the same port.

    It keeps what it holds on disk (retained messages, the queues of durable
    subscribers) when stopped, as a broker restarted for an upgrade does.
    With ``users`` ({name: password}) it refuses anyone else; ``port``: its own, else a free one.
    """

    def __init__(self, folder, users=None, port=None):
        if shutil.which("mosquitto") is None:
            pytest.fail("mosquitto is missing: `make test` installs it (apt-get install mosquitto)")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()  # a port given: a client may be trying it before the broker starts
        # Started by root (as in CI), Mosquitto would become the user `mosquitto`, who cannot read a test's folder.
        lines = [f"listener {self.port} 127.0.0.1", f"user {pwd.getpwuid(os.getuid()).pw_name}", "persistence true",
                 f"persistence_location {self.folder}/", "autosave_interval 1"]
        if users:
            passwords = self.folder / "passwords"
            passwords.write_text("".join(f"{name}:{password}\n" for name, password in users.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.config = self.folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process = None

    def start(self):
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.folder / "log.txt", "a"))
        assert wait_until(self.answers, 30), (self.folder / "log.txt").read_text()
        return self

    def answers(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()  # a clean stop: mosquitto saves what it holds first
            self.process.wait(30)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Subscriber:
    """A durable subscriber (its session outlives a broker restart) that keeps every message it gets."""

    def __init__(self, port, topic="#", username=None, password=None, client_id="test-subscriber"):
        import paho.mqtt.client as paho

        self.messages = []  # (topic, payload text, retained)
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda client, *rest: client.subscribe(topic, qos=1)
        self.client.on_message = self._keep
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _keep(self, client, userdata, message):
        with self._lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def on(self, topic):
        """The payloads received on ``topic`` (JSON where they are, text, or bytes: a picture)."""
        with self._lock:
            payloads = [payload for name, payload, _ in self.messages if name == topic]
        return [_parsed(payload) for payload in payloads]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _parsed(payload):
    """A message's payload: JSON where it is, else text, else (a picture) its bytes."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode()
        except UnicodeDecodeError:
            return payload
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def retained(port, until, topic="#", limit=60.0, username=None, password=None):
    """{topic: payload} of the retained messages under ``topic``, as a new subscriber gets them, once
    ``until(them)`` holds (or ``limit`` seconds have gone)."""
    import paho.mqtt.client as paho

    got = {}
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    if username:
        client.username_pw_set(username, password)
    client.on_connect = lambda c, *rest: c.subscribe(topic, qos=1)
    client.on_message = lambda c, u, message: got.__setitem__(message.topic, _parsed(message.payload)) \
        if message.retain else None
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_until(lambda: until(dict(got)), limit)
        return dict(got)
    finally:
        client.disconnect()
        client.loop_stop()
