"""A site file (TOML): the cameras one service watches, and the outputs they share.

    [service]
    state_every = 10                # seconds between state messages (they are also sent on change)
    events = "events.jsonl"         # every camera's alerts and people, one JSON line each
    stats = "stats.jsonl"           # one line a minute per camera (stats_every: seconds between lines)
    metrics_port = 9108             # Prometheus /metrics

    [mqtt]
    host = "broker.local"
    username = "detector"
    password_env = "MQTT_PASSWORD"  # a secret is named, never written: its environment variable

    [defaults]                      # any camera key, for every camera
    privacy = "blur"
    max_fps = 10

    [[camera]]
    name = "front-door"
    source_env = "FRONT_DOOR_URL"   # rtsp://user:password@... from the environment

    [[camera]]
    name = "back-door"
    source = "rtsp://192.168.1.20/stream"
    snapshots = "alerts/back"

A camera takes every flag of detect_mask_video.py's live run by its name
(live.LiveSettings and pipeline.PipelineSettings: person_frames, privacy,
detect_size, ...). The whole file is checked before anything starts; a
mistake is one line naming the key and what was expected.
"""

import dataclasses
import os
import re
import tomllib
from pathlib import Path

from mask_detector.errors import UserError
from mask_detector.faces import FACE_DETECTORS
from mask_detector.classifier import PREPROCESSING
from mask_detector.live import LiveSettings
from mask_detector.pipeline import LIVE, PipelineSettings
from mask_detector.privacy import PRIVACY_MODES, hides_faces

STATE_EVERY_SECONDS = 10.0
STATS_EVERY_SECONDS = 60.0
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclasses.dataclass(frozen=True)
class MqttSettings:
    host: str = "localhost"
    port: int = 1883
    prefix: str = "mask_detector"  # topics: <prefix>/<camera>/events, /state, /availability
    discovery_prefix: str = "homeassistant"  # Home Assistant's; empty: no discovery configs
    username: str | None = None
    password: str | None = None  # from password_env; never shown
    tls: bool = False
    ca_file: str | None = None  # with tls: the broker's CA; empty: the system's
    queue: int = 1000  # messages kept while the broker is away; past that, dropped and counted

    def __repr__(self):  # never print a password, even in a traceback
        return f"MqttSettings(host={self.host!r}, port={self.port}, prefix={self.prefix!r})"


@dataclasses.dataclass(frozen=True)
class SiteSettings:
    cameras: tuple  # LiveSettings, each with its name
    mqtt: MqttSettings | None = None
    events: str | None = None
    stats: str | None = None
    metrics_port: int | None = None
    state_every: float = STATE_EVERY_SECONDS
    stats_every: float = STATS_EVERY_SECONDS


# What each key may hold: (type, least value or choices). Keys of LiveSettings and PipelineSettings.
_NUMBER = (int, float)
CAMERA_KEYS = {
    "name": (str, NAME), "source": (str, None), "source_env": (str, None),
    "person_frames": (int, 1), "alert_cooldown": (_NUMBER, 0), "on_alert": (str, None),
    "alert_timeout": (_NUMBER, 0.1), "snapshots": (str, None), "clips": (str, None),
    "clip_before": (_NUMBER, 0), "clip_after": (_NUMBER, 0), "privacy": (str, PRIVACY_MODES),
    "evidence_faces": (bool, None), "keep_days": (_NUMBER, 0), "timeout": (_NUMBER, 0.5),
    "reconnect_for": (_NUMBER, 0), "max_fps": (_NUMBER, 0.1),
    "model": (str, None), "face_detector": (str, FACE_DETECTORS), "confidence": (_NUMBER, 0),
    "detect_size": (int, 32), "single_scale": (bool, None), "preprocess": (str, PREPROCESSING),
}
SERVICE_KEYS = {"state_every": (_NUMBER, 1), "stats_every": (_NUMBER, 1), "events": (str, None),
                "stats": (str, None), "metrics_port": (int, 1)}
MQTT_KEYS = {"host": (str, None), "port": (int, 1), "prefix": (str, None), "discovery_prefix": (str, None),
             "username": (str, None), "password_env": (str, None), "tls": (bool, None), "ca_file": (str, None),
             "queue": (int, 1)}
PIPELINE_KEYS = {field.name for field in dataclasses.fields(PipelineSettings)} - {"doubtful_faces"}


def _checked(table, allowed, where):
    """``table`` with every key known and every value of its kind; a UserError naming the first that is not."""
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a table")
    for key, value in table.items():
        if key not in allowed:
            raise UserError(f"{where}: unknown key {key!r}; expected one of {', '.join(sorted(allowed))}")
        kind, rule = allowed[key]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            expected = {str: "text", bool: "true or false", int: "a whole number"}.get(kind, "a number")
            raise UserError(f"{where}: {key}: expected {expected}, got {value!r}")
        if isinstance(rule, re.Pattern) and not rule.fullmatch(value):
            raise UserError(f"{where}: {key}: expected letters, digits, '-' and '_' only, got {value!r}")
        if isinstance(rule, tuple) and value not in rule:
            raise UserError(f"{where}: {key}: expected one of {', '.join(rule)}, got {value!r}")
        if isinstance(rule, (int, float)) and not isinstance(rule, bool) and value < rule:
            raise UserError(f"{where}: {key}: expected at least {rule}, got {value!r}")
    return table


def _secret(name, where, environ):
    value = environ.get(name)
    if not value:
        raise UserError(f"{where}: the environment variable {name} is not set")
    return value


def _camera(table, number, defaults, environ, path):
    where = f"{path}: camera {number}" + (f" ({table['name']})" if isinstance(table.get("name"), str) else "")
    values = _checked(defaults | _checked(table, CAMERA_KEYS, where), CAMERA_KEYS, where)
    if "name" not in table:
        raise UserError(f"{where}: name: expected a name for each camera")
    if ("source" in values) == ("source_env" in values):
        raise UserError(f"{where}: expected either source or source_env (an environment variable holding it)")
    if values.get("privacy") == "stats" and (values.get("snapshots") or values.get("clips")):
        raise UserError(f"{where}: privacy stats writes no pictures; drop snapshots and clips")
    if "keep_days" in values and not (values.get("snapshots") or values.get("clips")):
        raise UserError(f"{where}: keep_days deletes old snapshots and clips: give snapshots or clips too")
    source = values.pop("source", None) or _secret(values.pop("source_env"), where, environ)
    pipeline = {key: values.pop(key) for key in list(values) if key in PIPELINE_KEYS}
    pipeline = dataclasses.replace(LIVE, **pipeline, doubtful_faces=hides_faces(values.get("privacy", "off")))
    return LiveSettings(source=str(source), pipeline=pipeline, **values)


def load_site(path, environ=os.environ):
    """The SiteSettings of a site file, checked whole; a UserError of one line for the first mistake."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"site file {path} not found") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None
    known = {"service", "mqtt", "defaults", "camera"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown section {unknown[0]!r}; expected service, mqtt, defaults and camera")
    service = _checked(data.get("service", {}), SERVICE_KEYS, f"{path}: [service]")
    defaults = _checked(data.get("defaults", {}), CAMERA_KEYS, f"{path}: [defaults]")
    if "name" in defaults or "source" in defaults or "source_env" in defaults:
        raise UserError(f"{path}: [defaults]: name and source belong to each camera")
    tables = data.get("camera", [])
    if not isinstance(tables, list) or not tables:
        raise UserError(f"{path}: expected at least one [[camera]] with a name and a source")
    cameras = tuple(_camera(table, number, defaults, environ, path) for number, table in enumerate(tables, 1))
    names = [camera.name for camera in cameras]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"{path}: camera name {twice[0]!r} is used twice; each camera needs its own")
    mqtt = None
    if "mqtt" in data:
        options = dict(_checked(data["mqtt"], MQTT_KEYS, f"{path}: [mqtt]"))
        if "password_env" in options:
            options["password"] = _secret(options.pop("password_env"), f"{path}: [mqtt]", environ)
        mqtt = MqttSettings(**options)
    return SiteSettings(cameras, mqtt, service.get("events"), service.get("stats"), service.get("metrics_port"),
                        float(service.get("state_every", STATE_EVERY_SECONDS)),
                        float(service.get("stats_every", STATS_EVERY_SECONDS)))
