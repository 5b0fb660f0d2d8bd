"""The run's long, independent jobs (exports, notebooks, CLI commands, worker
processes), done one after another in a background thread from the start of the run:
a test process leaves the second core idle for much of the run, and these jobs are
child processes (a TensorFlow exporter, a notebook kernel) that need no test's state.

A test that keeps both cores busy by itself holds `exclusive()`: no job starts while it
runs (one already running goes on), since two processes splitting their work across
the same two cores slow each other more than they gain.

A test asks for its job's outcome with `result(label)`: it waits for the job if it is
running or done, and does the job itself if it has not started (the queue then skips
it), so that no test waits for work queued behind other work. A job that failed raises
its error there.
"""

import contextlib
import threading
import time


class Queue:
    def __init__(self, jobs, start=True):
        """`jobs`: (label, function, memory) each; a job starts only once `memory`
        bytes are free. Without `start`, no job runs in the background: each is done by
        the test that asks for it."""
        self._jobs = {label: (function, memory) for label, function, memory in jobs}
        self._lock = threading.Lock()
        self._started = set()  # by the queue or by a test
        self._outcomes = {}
        self._finished = {label: threading.Event() for label in self._jobs}
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._exclusive = 0
        self.made = []  # (label, seconds, error or None) for each job the queue ran
        self._thread = threading.Thread(target=self._work, name="background-jobs", daemon=True)
        if start:
            self._thread.start()

    def _work(self):
        for label, (_, memory) in self._jobs.items():
            # A job a test has started needs no memory waited for.
            while not self._stopping.is_set() and label not in self._started and free_memory() < memory:
                self._stopping.wait(5)
            with self._lock:
                self._idle.wait_for(lambda: not self._exclusive or self._stopping.is_set())
                if self._stopping.is_set():
                    return
                if label in self._started:
                    continue
                self._started.add(label)
            start = time.monotonic()
            error = self._do(label)
            self.made.append((label, time.monotonic() - start, error and f"{type(error).__name__}: {str(error)[:200]}"))

    def _do(self, label):
        value, error = None, RuntimeError(f"background job {label!r} was interrupted")
        try:
            value, error = self._jobs[label][0](), None
        except Exception as e:  # noqa: BLE001 - raised again in the test that asks
            error = e
        finally:  # so that no test waits for ever
            self._outcomes[label] = (value, error)
            self._finished[label].set()
        return error

    def result(self, label):
        if label not in self._jobs:
            raise KeyError(f"no background job {label!r} in this run (its module's jobs leave it out)")
        with self._lock:
            mine = label not in self._started
            self._started.add(label)
        if mine:
            self._do(label)
        self._finished[label].wait()
        value, error = self._outcomes[label]
        if error is not None:
            raise error
        return value

    @contextlib.contextmanager
    def exclusive(self):
        """No job starts inside this block."""
        with self._lock:
            self._exclusive += 1
        try:
            yield
        finally:
            with self._lock:
                self._exclusive -= 1
                self._idle.notify_all()

    def stop(self):
        """Let a running job finish, start no other; what ran (see `made`)."""
        with self._lock:
            self._stopping.set()
            self._idle.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        return self.made


def free_memory():
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024
