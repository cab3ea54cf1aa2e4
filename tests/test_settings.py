"""mask_detector/settings.py: settings declared once, their limits checked, and the keys a site file takes."""

from dataclasses import dataclass

from mask_detector.settings import as_flag, setting, settings_of, site_settings


@dataclass(frozen=True)
class Example:
    count: int = setting(5, "how many", least=1)
    share: float = setting(0.5, "how much", least=0)
    mode: str = setting("off", "which", choices=("off", "on"))
    name: str = setting("", "what", pattern=r"[a-z]+", pattern_text="small letters only", flag=False)
    secret: str | None = setting(None, "never written", str, environment="only")
    source: str = setting("0", "where from", environment="also")
    hidden: bool = setting(False, "not in a site file", site=False)
    derived: int = 3  # no setting: nobody types it


def test_the_settings_are_the_declared_fields_in_order():
    assert [s.name for s in settings_of(Example)] == ["count", "share", "mode", "name", "secret", "source", "hidden"]
    assert Example().count == 5 and Example().derived == 3
    assert as_flag("clip_before") == "--clip-before" and settings_of(Example)[0].option == "--count"


def test_each_limit_is_a_phrase_naming_what_was_expected():
    count, share, mode, name, *_ = settings_of(Example)
    assert count.problem(1) is None and count.problem(0) == "expected at least 1, got 0"
    assert count.problem(2.0) == "expected a whole number, got 2.0"
    assert count.problem(True) == "expected a whole number, got True"  # TOML's true is no number
    assert share.problem(0) is None and share.problem(-0.5) == "expected at least 0, got -0.5"
    assert share.problem("1") == "expected a number, got '1'"
    assert mode.problem("on") is None and mode.problem("auto") == "expected one of off, on, got 'auto'"
    assert name.problem("door") is None and name.problem("Door 1") == "expected small letters only, got 'Door 1'"


def test_a_site_file_names_an_environment_variable_for_what_it_must_not_write():
    keys = site_settings(Example)
    assert sorted(keys) == ["count", "mode", "name", "secret_env", "share", "source", "source_env"]
    assert keys["secret_env"].problem("BROKER_PASSWORD") is None and keys["secret_env"].default is None
    assert keys["source_env"].problem(3) == "expected text, got 3"
