"""requirements.txt (pip) and environment.yml (conda) pin the same versions, and they are what runs."""

import re
import sys
from importlib import metadata

from support.scripts import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)\s*(?:;\s*(.+))?$")


def pins_in(lines):
    pins = {}
    for line in lines:
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        name, version, marker = match.groups()
        pins[(name.lower(), marker or "")] = version
    return pins


def requirements_pins():
    return pins_in((ROOT / "requirements.txt").read_text().splitlines())


def environment_pins():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    # The pip section is every deeper-indented "- " item after "- pip:".
    indent = len(lines[start]) - len(lines[start].lstrip())
    section = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        section.append(line.strip().removeprefix("- "))
    return pins_in(section)


def test_pip_and_conda_pin_the_same_versions():
    assert requirements_pins() == environment_pins()


def test_conda_python_is_311():
    assert re.search(r"^\s*- python=3\.11\s*$", (ROOT / "environment.yml").read_text(), re.M)


def test_running_environment_has_the_pinned_versions():
    from packaging.markers import Marker

    for (name, marker), version in requirements_pins().items():
        if marker and not Marker(marker).evaluate():
            continue
        assert metadata.version(name) == version, f"{name}: pinned {version}, installed {metadata.version(name)}"
    assert sys.version_info[:2] >= (3, 11)
