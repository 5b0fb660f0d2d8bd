"""The run's long, independent jobs (the default model's exports, the notebooks), done
one after another in a background thread from the start of the run: a test process
leaves the second core idle for much of the run, and these jobs are child processes
(a TensorFlow exporter, a notebook kernel) that need no test's state.

A test asks for its job's result with `result(label, function)`: it waits for the job
if it is queued or running, and calls `function` itself if the job is not queued or
the queue was stopped before reaching it. A job that failed raises its error there.
"""

import threading
import time


class Queue:
    def __init__(self, jobs):
        """`jobs`: (label, function, memory) each; a job starts only once `memory`
        bytes are free."""
        self._jobs = list(jobs)
        self._outcomes = {}
        self._finished = {label: threading.Event() for label, _, _ in self._jobs}
        self._stopping = threading.Event()
        self.made = []  # (label, seconds, error or None) for each job that ran
        self._thread = threading.Thread(target=self._work, name="background-jobs", daemon=True)
        self._thread.start()

    def _work(self):
        try:
            for label, function, memory in self._jobs:
                while not self._stopping.is_set() and free_memory() < memory:
                    self._stopping.wait(5)
                if self._stopping.is_set():
                    return
                start, value, error = time.monotonic(), None, None
                try:
                    value = function()
                except Exception as e:  # noqa: BLE001 - raised again in the test that asks
                    error = e
                self.made.append((label, time.monotonic() - start, error and f"{type(error).__name__}: {str(error)[:200]}"))
                self._outcomes[label] = (value, error)
                self._finished[label].set()
        finally:
            for event in self._finished.values():  # jobs never reached: their tests run them
                event.set()

    def result(self, label, function):
        if label in self._finished:
            self._finished[label].wait()
            if label in self._outcomes:
                value, error = self._outcomes[label]
                if error is not None:
                    raise error
                return value
        return function()

    def stop(self):
        """Let a running job finish, start no other; what ran (see `made`)."""
        self._stopping.set()
        self._thread.join()
        return self.made


def free_memory():
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024
