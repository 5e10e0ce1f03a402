"""Progress lines for the user: one prefix, stdout, flushed (runs are long)."""
import sys


def info(message):
    print(f"[tl-app] {message}", file=sys.stdout, flush=True)


def warn(message):
    print(f"[tl-app] warning: {message}", file=sys.stderr, flush=True)
