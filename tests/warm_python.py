"""A warm interpreter for the run's `python -m MODULE ...` child processes.

Each export from a JAX test runs `python -m mobile_export.<module> ...` under
TensorFlow (`tf_process`): a fresh process that spends about 8 s of a core importing
TensorFlow, Keras and keras-hub before its work, some twenty times a run. This server
imports them once, then forks a child for each command: the child is a fresh process
(its own memory, state and exit) whose imports are already done. It gets the caller's
standard streams (passed over the socket), working folder and environment, and runs the
module as `python -m` does. Only the variables read at import time must equal the
server's; `Server.start` starts a real process where they do not.

    python tests/warm_python.py SOCKET MODULE...   (serves until its stdin closes)
"""

import importlib
import json
import os
import runpy
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import traceback

# Read once, at import (Keras' backend, TensorFlow's logging and oneDNN, the allocator,
# the module search path): a command whose values differ runs in a real process.
IMPORT_TIME = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "LD_PRELOAD", "PYTHONPATH",
               "PYTHONHASHSEED", "XLA_FLAGS")


class Server:
    """Client side: `start(command, env, stdout)` is a `subprocess.Popen(command,
    stdout=stdout, stderr=PIPE, text=True, env=env)` for `python -m MODULE ...`, served
    by a warm interpreter (started on first use) that has imported `modules` under
    `env` (that of the commands to serve)."""

    def __init__(self, env, modules):
        self._env, self._modules = env, modules
        self._lock = threading.Lock()
        self._process = self._folder = None

    def start(self, command, env, stdout):
        if command[:2] != [sys.executable, "-m"] or any(env.get(k) != self._env.get(k) for k in IMPORT_TIME):
            return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
        return _Child(self._address(), command[2], command[3:], env, stdout)

    def _address(self):
        with self._lock:
            if self._process is None:
                self._folder = tempfile.mkdtemp(prefix="warm_python")
                address = os.path.join(self._folder, "socket")
                self._process = subprocess.Popen([sys.executable, os.path.abspath(__file__), address, *self._modules],
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                                 env=self._env)
                if self._process.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"the warm interpreter did not start (exit code {self._process.wait()})")
            return os.path.join(self._folder, "socket")

    def stop(self):
        """Stop serving (children still running finish on their own)."""
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()
                self._process.wait()
                os.remove(os.path.join(self._folder, "socket"))
                os.rmdir(self._folder)
                self._process = None


class _Child:
    """The parts of `subprocess.Popen` that `tf_process` uses: `stderr`, `wait()`."""

    def __init__(self, address, module, args, env, stdout):
        read, write = os.pipe()
        stdin = os.open(os.devnull, os.O_RDONLY)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._socket.connect(address)
            request = {"module": module, "args": list(args), "env": dict(env), "cwd": os.getcwd()}
            socket.send_fds(self._socket, [json.dumps(request).encode()], [stdin, stdout.fileno(), write])
        finally:
            os.close(stdin)
            os.close(write)
        self.stderr = os.fdopen(read)
        self.returncode = None

    def wait(self):
        if self.returncode is None:
            answer = self._socket.recv(64)
            if not answer:
                raise RuntimeError("the warm interpreter stopped before its child finished")
            self.returncode = int(answer)
            self._socket.close()
            self.stderr.close()
        return self.returncode


def serve(address, modules):
    for module in modules:
        importlib.import_module(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)  # readable at its end: the caller is done
    print("ready", flush=True)
    children = {}  # pid: the connection its exit code goes to
    while True:
        for key, _ in selector.select(timeout=0.05):
            if key.fileobj is sys.stdin:
                return
            connection, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                _run(json.loads(message), fds)  # never returns
            for fd in fds:
                os.close(fd)
            children[pid] = connection
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                connection = children.pop(pid)
                connection.send(str(os.waitstatus_to_exitcode(status)).encode())
                connection.close()


def _run(request, fds):
    """In the forked child: become `python -m MODULE ARGS` and exit with its code."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["module"], *request["args"]]
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported as python reports it, exit code 1
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream
                pass
        os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
