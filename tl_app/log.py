"""Progress lines for the user: one prefix, stdout, flushed (runs are long)."""
import sys


def info(message):
    print(f"[tl-app] {message}", file=sys.stdout, flush=True)


def warn(message):
    print(f"[tl-app] warning: {message}", file=sys.stderr, flush=True)


PROGRESS_DELAY = 2.0  # seconds before a progress bar appears: short work stays quiet


def progress(iterable, total=None, desc="", unit="batch"):
    """A tqdm progress bar over `iterable` on a terminal, shown once the work has taken `PROGRESS_DELAY` seconds.

    For long work outside training (feature extraction, evaluation, reading data); off when the
    output is not a terminal (logs get their own lines).
    """
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=None, delay=PROGRESS_DELAY, leave=False)
