"""The run's long, independent jobs (exports, notebooks, CLI commands, worker
processes), done one after another in a background thread from the start of the run:
a test process leaves the second core idle for much of the run, and these jobs are
child processes (a TensorFlow exporter, a notebook kernel) that need no test's state.

A test that keeps both cores busy by itself holds `exclusive()`: no job starts while it
runs (one already running goes on), since two processes splitting their work across
the same two cores slow each other more than they gain.

A test asks for its job's result with `result(label, function)`: it waits for the job
if it is running and calls `function` itself if the job has not started (the queue
then skips it), so that no test waits for work queued behind other work. A job that
failed raises its error there.
"""

import contextlib
import threading
import time


class Queue:
    def __init__(self, jobs):
        """`jobs`: (label, function, memory) each; a job starts only once `memory`
        bytes are free."""
        self._jobs = list(jobs)
        self._lock = threading.Lock()
        self._states = {label: "queued" for label, _, _ in self._jobs}  # then "running", or "taken" by its test
        self._outcomes = {}
        self._finished = {label: threading.Event() for label in self._states}
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._exclusive = 0
        self.made = []  # (label, seconds, error or None) for each job that ran
        self._thread = threading.Thread(target=self._work, name="background-jobs", daemon=True)
        self._thread.start()

    def _work(self):
        try:
            for label, function, memory in self._jobs:
                # A job its test has taken needs no memory waited for.
                while not self._stopping.is_set() and self._states[label] != "taken" and free_memory() < memory:
                    self._stopping.wait(5)
                if self._stopping.is_set():
                    return
                with self._lock:
                    self._idle.wait_for(lambda: not self._exclusive or self._stopping.is_set())
                    if self._stopping.is_set():
                        return
                    if self._states[label] == "taken":
                        continue
                    self._states[label] = "running"
                start, value, error = time.monotonic(), None, None
                try:
                    value = function()
                except Exception as e:  # noqa: BLE001 - raised again in the test that asks
                    error = e
                self.made.append((label, time.monotonic() - start, error and f"{type(error).__name__}: {str(error)[:200]}"))
                self._outcomes[label] = (value, error)
                self._finished[label].set()
        finally:
            for event in self._finished.values():
                event.set()

    def result(self, label, function):
        with self._lock:
            running = self._states.get(label) == "running"
            if self._states.get(label) == "queued":
                self._states[label] = "taken"
        if running:
            self._finished[label].wait()
            if label in self._outcomes:
                value, error = self._outcomes[label]
                if error is not None:
                    raise error
                return value
        return function()

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
        self._thread.join()
        return self.made


def free_memory():
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024
