"""mask_detector/errors.py: run_cli turns even an unexpected exception into one line, not a traceback."""

import pytest


@pytest.mark.parametrize("failure, expected", [
    (KeyError("no such thing"), "error: unexpected KeyError at test_errors.py:"),
    (MemoryError(), "error: out of memory"),
])
def test_an_unexpected_exception_is_one_line_too(capsys, failure, expected):
    """A bug is not bad input, but it still ends in one line (with where it happened), not a traceback."""
    from mask_detector.errors import run_cli

    def main(argv):
        raise failure

    with pytest.raises(SystemExit) as exit_status:
        run_cli(main)
    assert exit_status.value.code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(expected)
    assert line.endswith("; please report this") == isinstance(failure, KeyError)
