"""The errors that reach the user as a single line."""


class UserError(Exception):
    """Bad input from the user: the CLI prints `error: <message>` and exits 2.

    The message names the problem and the fix, in one line. Raise it as early
    as possible (before training starts) so a mistake costs seconds, not epochs.

    Args:
        message: the line the user sees.
        key: the config field at fault, when there is one (a config file then names its line).
    """

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


class ClusterError(RuntimeError):
    """A multi-worker run lost a peer or timed out: the CLI shows one line and exits 1."""


class RunRejected(Exception):
    """A run that trained but must not be published (a quality gate, a serving check).

    The CLI prints `error: <message>` (one line naming what failed, with the figures) and exits
    with `exit_code`; subclasses set their own code.
    """

    exit_code = 3


class ServingCheckFailed(RunRejected):
    """The new export, served by a fresh `tl-app serve`, did not answer as the in-process model: nothing published."""

    exit_code = 4
