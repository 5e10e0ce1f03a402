"""The one error type that reaches the user as a single line."""


class UserError(Exception):
    """Bad input from the user: the CLI prints `error: <message>` and exits 2.

    The message names the problem and the fix, in one line. Raise it as early
    as possible (before training starts) so a mistake costs seconds, not epochs.
    """
