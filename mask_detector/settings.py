"""Each setting declared once: its name, default, limits, help, and whether a flag and a site file take it.

A settings dataclass (pipeline.PipelineSettings, live.LiveSettings,
service.config.SiteSettings, ...) declares a field with ``setting(...)``.
The scripts' flags (cli.py) and the site file's checks (service/config.py)
are built from these declarations, so a limit or a help text is written in
one place only. A field declared with plain ``dataclasses.field`` is no
setting anyone types (a preset's nested settings, a value derived from others).
"""

import dataclasses
import math
import re

# A site file's name for a setting whose value comes from an environment variable: source_env, password_env.
FROM_ENVIRONMENT = "_env"


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a field takes, and who may set it."""

    name: str
    default: object
    help: str
    # bool, int, float or str (a float setting also takes a whole number); or a kind of its own, with
    # problem_of(site value), from_site(site value) and parse(one flag's text), such as zones.Zones
    kind: type
    least: float | None = None  # the least value of a number
    most: float | None = None  # the greatest
    empty: bool = False  # a text may be empty
    reads_file: bool = False  # a text that names a file to read: a site file's is checked to exist before the start
    choices: tuple | None = None  # the values a text may be
    pattern: str | None = None  # a regular expression a text must match whole
    pattern_text: str = ""  # the pattern in words, for the error
    flag: bool = True  # the scripts take it as --name-with-dashes
    short: str | None = None  # a one-letter flag too: "-m"
    aliases: tuple = ()  # other long flags that mean it
    metavar: str | None = None
    negatable: bool = False  # a switch with a --no- form too (its preset may turn it on)
    site: bool = True  # a site file takes it, by its name
    environment: str = ""  # "also": the site file may name an environment variable instead (name_env); "only": it must

    @property
    def option(self):
        return as_flag(self.name)

    def problem(self, value):
        """Why ``value`` is not one this setting takes (a phrase), or None when it is."""
        if hasattr(self.kind, "problem_of"):  # a kind of its own (zones.Zones) checks its values itself
            return self.kind.problem_of(value)
        number = self.kind in (int, float)
        fits = isinstance(value, (int, float) if self.kind is float else self.kind)
        if isinstance(value, bool) and self.kind is not bool or not fits:
            expected = {str: "text", bool: "true or false", int: "a whole number"}.get(self.kind, "a number")
            return f"expected {expected}, got {value!r}"
        if number and not math.isfinite(value):  # TOML and float() both read nan and inf
            return f"expected a finite number, got {value!r}"
        if self.most is not None and value > self.most:
            return f"expected at most {self.most}, got {value!r}"
        if self.kind is str and not self.empty and not value:
            return "expected some text, got an empty one"
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"expected {self.pattern_text}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"expected one of {', '.join(self.choices)}, got {value!r}"
        if number and self.least is not None and value < self.least:
            return f"expected at least {self.least}, got {value!r}"
        return None


def as_flag(name):
    """A setting's name as the scripts' flag: keep_days -> --keep-days."""
    return "--" + name.replace("_", "-")


def setting(default, help, kind=None, **declared):
    """A dataclass field that is a setting (see Setting for what ``declared`` may hold).

    ``kind`` is the default's type unless given (it must be, for a default of None).
    """
    kind = kind or type(default)
    return dataclasses.field(default=default, metadata={"setting": dict(default=default, help=help, kind=kind,
                                                                        **declared)})


def settings_of(cls):
    """The Settings a settings dataclass declares, in the order of its fields."""
    return [Setting(field.name, **field.metadata["setting"]) for field in dataclasses.fields(cls)
            if "setting" in field.metadata]


def site_settings(*classes):
    """{site-file key: Setting} of the settings of ``classes`` that a site file takes (name_env keys too)."""
    keys = {}
    for cls in classes:
        for declared in settings_of(cls):
            if declared.site and declared.environment != "only":
                keys[declared.name] = declared
            if declared.site and declared.environment:
                keys[declared.name + FROM_ENVIRONMENT] = dataclasses.replace(
                    declared, name=declared.name + FROM_ENVIRONMENT, default=None, kind=str, least=None, choices=None,
                    pattern=None,
                    help=f"the environment variable that holds {declared.name}")
    return keys
