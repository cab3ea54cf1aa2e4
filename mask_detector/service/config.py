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

    [[notify]]                      # each alert, also to a webhook, an ntfy topic or an e-mail address
    ntfy = "https://ntfy.example.com/shop-masks"
    cameras = ["back-door"]         # only these cameras' (default: every camera's)

A camera takes every flag of detect_mask_video.py's live run by its name
(live.LiveSettings and pipeline.PipelineSettings: person_frames, privacy,
detect_size, ...). Every key, its default and its limits come from those
settings' declarations (settings.setting): docs/service.md lists them. The
whole file is checked before anything starts; a mistake is one line naming
the key and what was expected.
"""

import dataclasses
import os
import tomllib
from pathlib import Path

from mask_detector.errors import UserError
from mask_detector.files import safe_name
from mask_detector.live import LiveSettings
from mask_detector.pipeline import LIVE, PipelineSettings
from mask_detector.privacy import check_keep_days, refuse_pictures
from mask_detector.settings import FROM_ENVIRONMENT, setting, settings_of, site_settings
from mask_detector.video import describe_source, redact

STATE_EVERY_SECONDS = 10.0
STATS_EVERY_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class MqttSettings:
    host: str = setting("localhost", "the broker's host name or address", flag=False)
    port: int = setting(1883, "the broker's port", least=1, most=65535, flag=False)
    prefix: str = setting("mask_detector", "topics: <prefix>/<camera>/events, /state, /availability", flag=False,
                          pattern=r"[^#+\s]+", pattern_text="a topic without #, + or spaces")
    discovery_prefix: str = setting("homeassistant", "Home Assistant's discovery prefix; empty: no discovery "
                                    "configs", flag=False, empty=True, pattern=r"[^#+\s]*",
                                    pattern_text="a topic without #, + or spaces")
    username: str | None = setting(None, "the user name the broker knows", str, flag=False)
    # A secret is named, never written: the site file gives password_env, the environment variable holding it.
    password: str | None = setting(None, "the password", str, flag=False, environment="only")
    tls: bool = setting(False, "connect with TLS", flag=False)
    ca_file: str | None = setting(None, "with tls: the broker's CA certificate; none: the system's", str, flag=False,
                                  reads_file=True)
    queue: int = setting(1000, "messages kept while the broker is away; past that, the oldest are dropped and "
                         "counted", least=1, flag=False)

    def __repr__(self):  # never print a password, even in a traceback
        return f"MqttSettings(host={self.host!r}, port={self.port}, prefix={self.prefix!r})"


class Pairs(tuple):
    """A site file's table of texts (HTTP headers), kept as (key, value) pairs: a kind of its own for the settings
    declarations (settings.Setting), which checks its values itself."""

    @staticmethod
    def problem_of(value):
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            return f"expected a table of texts, such as {{X-Site = \"shop\"}}, got {value!r}"
        return None

    @classmethod
    def from_site(cls, value):
        return cls(value.items())


class Names(tuple):
    """A site file's list of names (cameras): a kind of its own, as Pairs."""

    @staticmethod
    def problem_of(value):
        if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
            return f"expected a list of names, such as [\"front-door\"], got {value!r}"
        return None

    @classmethod
    def from_site(cls, value):
        return cls(value)


URL = r"https?://\S+"


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    """One [[notify]] table: a channel each alert is also sent to (notify.py), and how."""

    webhook: str | None = setting(None, "a URL each alert is POSTed to, as JSON", str, flag=False, pattern=URL,
                                  pattern_text="an http:// or https:// URL")
    ntfy: str | None = setting(None, "an ntfy topic's URL: each alert as a message, its snapshot attached", str,
                               flag=False, pattern=URL, pattern_text="an http:// or https:// URL")
    email: str | None = setting(None, "an address each alert is mailed to, its snapshot attached", str, flag=False,
                                pattern=r"[^@\s]+@[^@\s]+", pattern_text="an e-mail address")
    headers: Pairs = setting(Pairs(), "more HTTP headers (webhook, ntfy), as a table", flag=False)
    secret_headers: Pairs = setting(Pairs(), "headers whose values are secrets: header = the environment variable "
                                 "that holds its value", flag=False)
    cameras: Names = setting(Names(), "only these cameras' alerts; empty: every camera's", flag=False)
    smtp_host: str | None = setting(None, "with email: the mail server", str, flag=False)
    smtp_port: int = setting(587, "with email: the mail server's port", least=1, most=65535, flag=False)
    smtp_security: str = setting("starttls", "with email: starttls, tls (from the start) or none",
                                 choices=("starttls", "tls", "none"), flag=False)
    smtp_user: str | None = setting(None, "with email: the user name the server knows", str, flag=False)
    smtp_password: str | None = setting(None, "with email: the password", str, flag=False, environment="only")
    sender: str | None = setting(None, "with email: the From address", str, flag=False)
    timeout: float = setting(10.0, "seconds each try may take", least=0.1, flag=False)
    tries: int = setting(4, "tries of each alert, the waits between them doubling from 1 s", least=1, flag=False)
    queue: int = setting(100, "alerts waiting to be sent, at most; past that the oldest are dropped and counted",
                         least=1, flag=False)

    @property
    def kind(self):
        return next(kind for kind in ("webhook", "ntfy", "email") if getattr(self, kind))

    @property
    def name(self):
        """Where the channel sends, as messages may say it: a URL without what may be secret in it."""
        return redact(getattr(self, self.kind)).split("?")[0]

    def __repr__(self):  # never print a secret header or password, even in a traceback
        return f"NotifySettings({self.kind}={self.name!r})"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def host_and_port(address):
    """("host", port) of a checked HOST:PORT (web); an IPv6 host without its brackets."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@dataclasses.dataclass(frozen=True)
class SiteSettings:
    cameras: tuple = ()  # LiveSettings, each with its name
    mqtt: MqttSettings | None = None
    notify: tuple = ()  # NotifySettings, one per [[notify]] table
    events: str | None = setting(None, "every camera's alerts and people, one JSON line each", str, flag=False)
    # The script takes these two as flags too, which replace the site file's.
    stats: str | None = setting(None, "with --config: append one JSON line a minute per camera here", str)
    metrics_port: int | None = setting(None, "with --config: serve Prometheus /metrics here", int, least=1,
                                       most=65535)
    metrics_host: str = setting("127.0.0.1", "with metrics_port: the address /metrics and /healthz answer on; "
                                "127.0.0.1: this machine only, 0.0.0.0: every interface", flag=False)
    state_every: float = setting(STATE_EVERY_SECONDS, "seconds between state messages (a change is sent at once)",
                                 least=1, flag=False)
    stats_every: float = setting(STATS_EVERY_SECONDS, "seconds between lines of stats", least=1, flag=False)
    # The web page and its API (service/web.py). The script takes --web too, which replaces the site file's.
    web: str | None = setting(None, "with --config: serve the web page and its API at HOST:PORT (127.0.0.1:8080: "
                              "this machine only; any other address needs web_password)", str, metavar="HOST:PORT",
                              pattern=r"(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):\d{1,5}",
                              pattern_text="HOST:PORT, such as 127.0.0.1:8080 or [::1]:8080")
    # A secret is named, never written: the site file gives web_password_env, the environment variable holding it.
    web_password: str | None = setting(None, "with web: the password the page asks for", str, flag=False,
                                       environment="only")
    web_session_hours: float = setting(12.0, "with web_password: hours a login lasts", least=0.01, flag=False)
    web_fps: float = setting(4.0, "with web: live pictures a second at most, made only while someone watches",
                             least=0.2, most=10, flag=False)
    database: str = setting("events.db", "with web: the SQLite file that keeps every event and statistics line "
                            "across restarts, for the page", flag=False)

    def __repr__(self):  # never print the web password, even in a traceback
        return f"SiteSettings(cameras={[camera.camera for camera in self.cameras]}, web={self.web!r})"


# The keys of each part of a site file, from the settings' declarations.
SERVICE_KEYS = site_settings(SiteSettings)
MQTT_KEYS = site_settings(MqttSettings)
CAMERA_KEYS = site_settings(LiveSettings, PipelineSettings)
NOTIFY_KEYS = site_settings(NotifySettings)


def entity_slug(name):
    """``name`` as a part of a Home Assistant entity id, which takes lower-case letters, digits and _ only."""
    return safe_name(name).lower().replace("-", "_")


def _checked(table, allowed, where):
    """``table`` with every key known and every value of its kind; a UserError naming the first that is not."""
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a table")
    for key, value in table.items():
        if key not in allowed:
            raise UserError(f"{where}: unknown key {key!r}; expected one of {', '.join(sorted(allowed))}")
        problem = allowed[key].problem(value)
        if problem:
            raise UserError(f"{where}: {key}: {problem}")
        if allowed[key].reads_file and not Path(value).is_file():
            raise UserError(f"{where}: {key}: file {value} not found")
    return table


def _from_environment(values, where, environ):
    """``values`` with each name_env key replaced by the setting it names, read from the environment."""
    for key in [key for key in values if key.endswith(FROM_ENVIRONMENT)]:
        variable = values.pop(key)
        value = environ.get(variable)
        if not value:
            raise UserError(f"{where}: the environment variable {variable} is not set")
        values[key.removesuffix(FROM_ENVIRONMENT)] = value
    return values


def _camera(table, number, defaults, environ, path):
    where = f"{path}: camera {number}" + (f" ({table['name']})" if isinstance(table.get("name"), str) else "")
    values = _checked(defaults | _checked(table, CAMERA_KEYS, where), CAMERA_KEYS, where)
    if "name" not in table:
        raise UserError(f"{where}: name: expected a name for each camera")
    if ("source" in values) == ("source_env" in values):
        raise UserError(f"{where}: expected either source or source_env (an environment variable holding it)")
    try:
        refuse_pictures(values.get("privacy", "off"), spell=str, snapshots=values.get("snapshots"),
                        clips=values.get("clips"))
        check_keep_days(values.get("keep_days"), spell=str, snapshots=values.get("snapshots"),
                        clips=values.get("clips"))
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    values = _from_environment(values, where, environ)
    try:
        describe_source(values["source"])
    except UserError:
        raise UserError(f"{where}: source: {redact(values['source'])!r} is neither a camera index, an existing video "
                        f"file nor a stream URL") from None
    values = _of_their_kinds(values, LiveSettings, PipelineSettings)
    pipeline_keys = {field.name for field in dataclasses.fields(PipelineSettings)}
    pipeline = {key: values.pop(key) for key in list(values) if key in pipeline_keys}
    pipeline = dataclasses.replace(LIVE, **pipeline)
    return LiveSettings(pipeline=pipeline, **values)


def _of_their_kinds(values, *classes):
    """Checked site values, each setting of a kind of its own (zones, headers) made from its site value."""
    kinds = {declared.name: declared.kind for cls in classes for declared in settings_of(cls)}
    return {key: kinds[key].from_site(value) if hasattr(kinds[key], "from_site") else value
            for key, value in values.items()}


def _notification(table, number, environ, path, cameras):
    """The NotifySettings of the ``number``-th [[notify]] table, checked whole."""
    where = f"{path}: notify {number}"
    values = dict(_checked(table, NOTIFY_KEYS, where))
    channels = [kind for kind in ("webhook", "ntfy", "email") if kind in values]
    if len(channels) != 1:
        raise UserError(f"{where}: expected one of webhook, ntfy or email, got {' and '.join(channels) or 'none'}")
    if channels == ["email"] and not (values.get("smtp_host") and values.get("sender")):
        raise UserError(f"{where}: email needs smtp_host and sender")
    unknown = [name for name in values.get("cameras", ()) if name not in cameras]
    if unknown:
        raise UserError(f"{where}: cameras: no camera is named {unknown[0]!r}")
    values = _from_environment(values, where, environ)
    secrets = {}
    for header, variable in values.pop("secret_headers", {}).items():
        if not environ.get(variable):
            raise UserError(f"{where}: the environment variable {variable} is not set")
        secrets[header] = environ[variable]
    values["headers"] = values.get("headers", {}) | secrets
    return NotifySettings(**_of_their_kinds(values, NotifySettings))


def _read_toml(path):
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"site file {path} not found") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None


def load_site(path, environ=os.environ):
    """The SiteSettings of a site file, checked whole; a UserError of one line for the first mistake."""
    path = Path(path)
    data = _read_toml(path)
    unknown = sorted(set(data) - {"service", "mqtt", "defaults", "camera", "notify"})
    if unknown:
        raise UserError(f"{path}: unknown section {unknown[0]!r}; expected service, mqtt, defaults, camera and "
                        f"notify")
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
    for number, name in enumerate(names):
        alike = [other for other in names[:number] if entity_slug(other) == entity_slug(name)]
        if alike:
            raise UserError(f"{path}: camera names {alike[0]!r} and {name!r} make the same topics, file names and "
                            f"Home Assistant ids ({entity_slug(name)}); rename one")
    mqtt = None
    if "mqtt" in data:
        options = dict(_checked(data["mqtt"], MQTT_KEYS, f"{path}: [mqtt]"))
        mqtt = MqttSettings(**_from_environment(options, f"{path}: [mqtt]", environ))
    tables = data.get("notify", [])
    if not isinstance(tables, list):
        raise UserError(f"{path}: notify: expected [[notify]] tables, one per channel")
    notify = tuple(_notification(table, number, environ, path, names) for number, table in enumerate(tables, 1))
    # Seconds are floats whichever way the file writes them.
    timing = {key: float(service[key]) for key in ("state_every", "stats_every", "web_session_hours", "web_fps")
              if key in service}
    service = _from_environment({key: value for key, value in service.items() if key not in timing},
                                f"{path}: [service]", environ)
    return check_web(SiteSettings(cameras, mqtt, notify, **service, **timing), f"{path}: [service]: web")


def check_web(site, where="--web"):
    """``site``, unless its web address cannot be served as it says: a UserError of one line."""
    if not site.web:
        return site
    problem = SERVICE_KEYS["web"].problem(site.web)
    if problem:
        raise UserError(f"{where}: {problem}")
    host, port = host_and_port(site.web)
    if not 1 <= port <= 65535:
        raise UserError(f"{where}: expected a port from 1 to 65535, got {port}")
    if host not in LOOPBACK_HOSTS and not site.web_password:
        raise UserError(f"{where}: {site.web} answers other machines: it needs a password (web_password_env, "
                        f"the environment variable that holds it), or serve it on 127.0.0.1")
    return site
