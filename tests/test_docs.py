"""The README and the pages of docs/: a short README that links every page, links and pictures that
lead somewhere, and documented commands whose flags the scripts take.

Offline: the programs run are the scripts' `--help`, once per script, and two first commands as written.
"""

import functools
import re
import shlex
import subprocess

import pytest

from support.scripts import ROOT, run_script, script_env

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
SCRIPTS = {
    "detect_mask_image.py", "detect_mask_video.py", "train_mask_detector.py", "evaluate_mask_detector.py",
    "export_tflite.py", "make_masked_faces.py",
}
# `mask-detector COMMAND ...` runs a script (mask_detector/__main__.py).
COMMANDS = {
    "image": "detect_mask_image.py", "video": "detect_mask_video.py", "train": "train_mask_detector.py",
    "evaluate": "evaluate_mask_detector.py", "export": "export_tflite.py", "make-faces": "make_masked_faces.py",
}
FENCE = re.compile(r"^ {0,3}(```|~~~)")
CODE_SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
FLAG = re.compile(r"(--[A-Za-z0-9][\w-]*)(?:=.*)?")  # a whole word: "--model M" is one word of another program's flags
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}


def page_id(page):
    return page.relative_to(ROOT).as_posix()


def split_fenced(text):
    """(the page less its fenced code blocks, the lines of each fenced block)."""
    prose, blocks, block = [], [], None
    for line in text.splitlines():
        if FENCE.match(line):
            if block is None:
                block = []
            else:
                blocks.append(block)
                block = None
            continue
        (prose if block is None else block).append(line)
    assert block is None, "a fenced code block is not closed"
    return "\n".join(prose), blocks


def links(page):
    """Every link and picture target of ``page`` outside code."""
    prose, _ = split_fenced(page.read_text(encoding="utf-8"))
    prose = CODE_SPAN.sub("", prose)
    return LINK.findall(prose) + REFERENCE.findall(prose) + HTML.findall(prose)


def local_target(page, target):
    """The file a relative link of ``page`` leads to, or None for a web address or an anchor of the page."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
        return None  # http(s), mailto: not checked here
    path = target.split("#", 1)[0].split("?", 1)[0]
    return (page.parent / path).resolve()


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move detail to a page of docs/"


def test_readme_links_every_page():
    linked = {local_target(README, target) for target in links(README)}
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ holds no page"
    missing = [page.name for page in pages if page.resolve() not in linked]
    assert not missing, f"README.md links no {', '.join(missing)}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_lead_to_files(page):
    broken = []
    for target in links(page):
        path = local_target(page, target)
        if path is not None and not path.exists():
            broken.append(target)
    assert not broken, f"{page_id(page)}: links to nothing: {', '.join(broken)}"


def words(text):
    """The shell words of ``text``; plain words where the quoting is a shell's only in spirit."""
    try:
        return shlex.split(text)
    except ValueError:  # an apostrophe in a comment, a quote left open across an abbreviated line
        return text.split()


def commands(lines):
    """(script, words after it) for each run of a script in these lines of shell: `python X.py ...`,
    `python benchmarks/X.py ...`, `mask-detector COMMAND ...`, or `X.py ...` alone.

    A line ending in a backslash goes on in the next. A comment is read too (`# the same: python
    X.py ...` documents a command), but a command ends where its own comment starts.
    """
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in text.splitlines():
        comment = re.search(r"(?:^|\s)#", line)
        parts = (line[:comment.start()], line[comment.end():]) if comment else (line,)
        for part in parts:
            found += _runs(words(part))
    return found


def _runs(tokens):
    runs = []
    python = [bool(re.fullmatch(r"(\S*/)?python3?", token)) for token in tokens]
    for index, token in enumerate(tokens):
        script = None
        following = tokens[index + 1:index + 3]
        if python[index] and following:
            name = following[0].removeprefix("./")
            if name in SCRIPTS or re.fullmatch(r"benchmarks/\w+\.py", name):
                script, start = name, index + 2
        elif token == "mask-detector" and following and following[0] in COMMANDS:
            script, start = COMMANDS[following[0]], index + 2
        elif token.removeprefix("./") in SCRIPTS and not (index and python[index - 1]):
            script, start = token.removeprefix("./"), index + 1  # a script named without python: `X.py --flag`
        if script:
            arguments = []
            for word in tokens[start:]:
                if word in SHELL_OPERATORS or word.startswith("#"):
                    break
                arguments.append(word)
            runs.append((script, arguments))
    return runs


@functools.cache
def flags_of(script):
    """The long flags ``script --help`` lists (its option lines only, not the examples in its text)."""
    assert (ROOT / script).is_file(), f"{script} does not exist"
    result = run_script(script, "--help", timeout=120, env=script_env())
    assert result.returncode == 0, f"{script} --help failed:\n{result.stderr[-2000:]}"
    flags = set()
    for line in result.stdout.splitlines():
        if re.match(r"^  -", line):  # an option line: its flags, then two spaces or more, then its help
            flags.update(re.findall(r"--[\w-]+", re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]))
    assert "--help" in flags, f"cannot read the options of {script} --help:\n{result.stdout[:2000]}"
    return frozenset(flags)


def unknown_flags(runs):
    unknown = []
    for script, arguments in runs:
        for word in arguments:
            flag = FLAG.fullmatch(word)
            if flag and flag.group(1) not in flags_of(script):
                unknown.append(f"{script} {flag.group(1)}")
    return unknown


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_commands_in_code_blocks_use_real_flags(page):
    _, blocks = split_fenced(page.read_text(encoding="utf-8"))
    runs = [run for block in blocks for run in commands(block)]
    unknown = unknown_flags(runs)
    assert not unknown, f"{page_id(page)}: flags that --help does not list: {', '.join(unknown)}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_commands_in_text_use_real_flags(page):
    prose, _ = split_fenced(page.read_text(encoding="utf-8"))
    runs = [run for span in CODE_SPAN.findall(prose) for run in commands([" ".join(span.split())])]
    unknown = unknown_flags(runs)
    assert not unknown, f"{page_id(page)}: flags that --help does not list: {', '.join(unknown)}"


def test_commands_are_found():
    """The reading of commands itself: continued lines, comments, quoted flags of another program."""
    block = [
        "python detect_mask_video.py --source rtsp://user:pass@camera/live --events people.jsonl \\",
        "       --on-alert \"notify-send 'No mask at the door'\" --snapshots alerts/",
        "mask-detector video --config site.toml   # the same: python detect_mask_video.py --stats s.jsonl",
        "python benchmarks/bench_tracking.py --script-args \"--model OLD.tflite\" | tail -1",
    ]
    assert commands(block) == [
        ("detect_mask_video.py", ["--source", "rtsp://user:pass@camera/live", "--events", "people.jsonl",
                                  "--on-alert", "notify-send 'No mask at the door'", "--snapshots", "alerts/"]),
        ("detect_mask_video.py", ["--config", "site.toml"]),
        ("detect_mask_video.py", ["--stats", "s.jsonl"]),
        ("benchmarks/bench_tracking.py", ["--script-args", "--model OLD.tflite"]),
    ]
    assert [word for _, arguments in commands(block) for word in arguments if FLAG.fullmatch(word)] == [
        "--source", "--events", "--on-alert", "--snapshots", "--config", "--stats", "--script-args",
    ]
    assert local_target(README, "docs/using.md#photos") == (ROOT / "docs" / "using.md").resolve()
    assert local_target(README, "https://docs.ray.io") is None and local_target(README, "#use") is None


# Two of the first commands a reader of docs/using.md runs, with their inputs put where the commands expect them.
RUN_AS_WRITTEN = (
    "python detect_mask_image.py --image photos/ --no-display --output annotated/ --json results.jsonl",
    "python detect_mask_video.py --source clip.mp4 --no-display --output annotated.mp4 --json frames.jsonl",
)


@pytest.mark.parametrize("command", RUN_AS_WRITTEN, ids=lambda command: command.split()[1])
def test_the_first_commands_run_as_written(command, samples, clip, tmp_path):
    assert command in (DOCS / "using.md").read_text(encoding="utf-8")
    (tmp_path / "photos").mkdir()
    for photo in samples[:2]:
        (tmp_path / "photos" / photo.name).write_bytes(photo.read_bytes())
    (tmp_path / "clip.mp4").write_bytes(clip.read_bytes())
    words = shlex.split(command)
    result = run_script(words[1], *words[2:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outputs = [word for word in words if word.endswith((".jsonl", ".mp4", "/")) and word not in ("photos/", "clip.mp4")]
    for output in outputs:
        written = tmp_path / output
        assert written.exists() and (any(written.iterdir()) if written.is_dir() else written.stat().st_size > 0)


def test_the_systemd_unit_is_one_systemd_accepts(tmp_path):
    """The example unit of docs/service.md, its folders moved under ``tmp_path`` (systemd checks that the command
    is there), passes `systemd-analyze verify` without a warning."""
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    unit = re.search(r"```ini\n(.*?)```", text, re.S).group(1)
    command = tmp_path / "opt" / "mask-detector" / "venv" / "bin" / "mask-detector"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    for folder in ("/opt/", "/etc/"):
        unit = unit.replace(folder, f"{tmp_path}{folder}")
    (tmp_path / "mask-detector.service").write_text(unit, encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", "./mask-detector.service"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
