"""`tl-app launch`: a multi-worker cluster of local processes, to try distributed training on one machine.

Each worker is `tl-app run RECIPE ... --strategy multi_worker` with its own
TF_CONFIG (workers on 127.0.0.1, free ports). Worker 0 is the chief: its
output streams to this terminal and it alone writes the run and the export.
The others log to files (kept, and named, when a worker fails). If any worker dies, the rest
are stopped at once and the launch fails naming it; the run then resumes from
its last checkpoint with the same command plus `--resume`.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from tl_app import log
from tl_app.errors import ClusterError, UserError

HOST = "127.0.0.1"
# Flags the launcher sets itself.
RESERVED = ("--strategy", "--tpu")


def free_ports(n, host=HOST):
    """`n` distinct ports free on `host` now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses, index):
    """The TF_CONFIG JSON of worker `index` in a cluster of `addresses` ('host:port')."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


def _describe_exit(code):
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _last_error_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("error:")]
    return errors[-1] if errors else (lines[-1] if lines else None)


def _tee(stream, log_path, echo):
    with open(log_path, "w", encoding="utf-8") as out:
        for line in iter(stream.readline, ""):
            out.write(line)
            out.flush()
            echo.write(line)
            echo.flush()


class Cluster:
    """N local worker processes running one `tl-app run` command.

    Args:
        workers: how many worker processes.
        run_args: the `tl-app run` arguments after the subcommand (RECIPE and its options).
        log_dir: where worker logs go (when None, a new temporary directory, removed after a success).
        stop_grace: seconds a worker gets between SIGTERM and SIGKILL when the cluster is stopped.
        finish_grace: seconds the others may keep running after one worker finished successfully.
    """

    def __init__(self, workers, run_args, log_dir=None, stop_grace=5.0, finish_grace=120.0):
        if workers < 1:
            raise UserError(f"--workers {workers}: need at least 1 worker.")
        for flag in RESERVED:
            if any(a == flag or a.startswith(flag + "=") for a in run_args):
                raise UserError(f"tl-app launch sets {flag} itself (multi_worker); remove it from the run options.")
        self.workers = workers
        self.run_args = list(run_args)
        self._own_log_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="tl-app-launch-")
        self.stop_grace = stop_grace
        self.finish_grace = finish_grace
        self.procs = []
        self._threads = []

    def log_path(self, index):
        return os.path.join(self.log_dir, f"worker-{index}.log")

    def start(self):
        ports = free_ports(self.workers)
        addresses = [f"{HOST}:{p}" for p in ports]
        command = [sys.executable, "-m", "tl_app.cli", "run", *self.run_args, "--strategy", "multi_worker"]
        log.info(f"launching {self.workers} worker(s) on {', '.join(addresses)}; worker logs in {self.log_dir}")
        for index in range(self.workers):
            env = dict(os.environ, TF_CONFIG=tf_config(addresses, index), PYTHONUNBUFFERED="1")
            if index == 0:
                proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                thread = threading.Thread(target=_tee, args=(proc.stdout, self.log_path(0), sys.stdout), daemon=True)
                thread.start()
                self._threads.append(thread)
            else:
                with open(self.log_path(index), "w") as out:
                    proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            self.procs.append(proc)
        return self

    def stop(self):
        """SIGTERM every running worker, then SIGKILL those still alive after `stop_grace` seconds."""
        alive = [p for p in self.procs if p.poll() is None]
        for p in alive:
            p.terminate()
        deadline = time.time() + self.stop_grace
        for p in alive:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def wait(self, poll_seconds=0.2):
        """Block until every worker succeeded; on the first failure stop the rest and raise."""
        first_success = None
        try:
            while True:
                codes = [p.poll() for p in self.procs]
                failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
                if failed:
                    self.stop()
                    self._raise_failure(*failed[0])
                if all(c == 0 for c in codes):
                    break
                if any(c == 0 for c in codes):
                    first_success = first_success or time.time()
                    if time.time() - first_success > self.finish_grace:
                        stuck = [i for i, c in enumerate(codes) if c is None]
                        self.stop()
                        raise ClusterError(f"worker(s) {', '.join(map(str, stuck))} did not finish within "
                                           f"{self.finish_grace:.0f} s of the others; stopped them (logs in {self.log_dir}).")
                time.sleep(poll_seconds)
        except KeyboardInterrupt:
            self.stop()
            raise
        for thread in self._threads:
            thread.join(timeout=5)
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)  # kept only when something failed

    def _raise_failure(self, index, code):
        for thread in self._threads:
            thread.join(timeout=5)
        detail = _last_error_line(self.log_path(index))
        others = self.workers - 1
        what = f"worker {index} {_describe_exit(code)}"
        if code == 2 and detail and detail.startswith("error:"):
            raise UserError(f"{what}: {detail[len('error:'):].strip()}")
        hint = f"; last line: {detail}" if detail else ""
        raise ClusterError(f"{what}{hint}. Stopped the other {others} worker(s); logs in {self.log_dir}. "
                           "Continue from the last checkpoint with the same command plus --resume.")


def launch(workers, run_args):
    """Start `workers` local workers running `tl-app run RUN_ARGS` and wait for them (see `Cluster`).

    Args:
        workers: how many worker processes.
        run_args: RECIPE and `tl-app run` options; they should name one `--run-id` (or `--resume`) so that
            every worker writes the same run.
    """
    cluster = Cluster(workers, run_args).start()
    cluster.wait()
    return cluster
