"""One kind of error for things a user can fix, and the wrapper that prints it."""

import sys


class UserError(Exception):
    """A problem with the input or set-up, told to the user in one line."""


def run_cli(main, argv=None):
    """Run a script's ``main``: a UserError becomes one line on stderr and exit 1."""
    try:
        status = main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
