"""A warm interpreter for the run's many `python -m MODULE ...` child processes.

Each export from a JAX test runs `python -m mobile_export.<module> ...` under
TensorFlow (`tf_process`), and each CLI test runs `python -m gemma_kit.cli ...`: fresh
processes that spend about 8 s of a core importing TensorFlow, JAX, Keras and keras-hub
before their work, some forty times a run. A server imports them once, then forks a
child for each command: the child is a fresh process (its own memory, state and exit
code) whose imports are already done. It gets the caller's standard streams (passed
over a socket), working folder and environment, and runs the module as `python -m`
does. Only the variables read at import (`IMPORT_TIME`) must be those the server
started with; a command whose values differ starts a real process.

    python tests/warm_python.py SOCKET MODULE...   (serves until its stdin closes)
"""

import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings

# Read once, at import, by Python, the allocator, JAX, Keras or TensorFlow. Others
# change during a run (pytest's PYTEST_CURRENT_TEST; TensorFlow's import sets some) and
# reach the child as they are.
IMPORT_TIME = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "PYTHONPATH", "PYTHONHASHSEED",
               "LD_PRELOAD", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", "JAX_*", "XLA_*")


class Server:
    """A warm interpreter that has imported `modules`, started on first use in that
    use's environment. `popen` and `run` stand for `subprocess.Popen` and
    `subprocess.run` of `[sys.executable, "-m", MODULE, ...]`."""

    def __init__(self, modules):
        self._modules = modules
        self._lock = threading.Lock()
        self._process = self._folder = self._env = None

    def popen(self, command, env, stdout):
        """`subprocess.Popen(command, stdout=stdout, stderr=PIPE, text=True, env=env)`."""
        if not self._serves(command, env):
            return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
        read, write = os.pipe()
        with open(os.devnull) as stdin:
            child = self._fork(command, env, [stdin.fileno(), stdout.fileno(), write])
        os.close(write)
        child.stderr = os.fdopen(read)
        return child

    def run(self, command, input="", timeout=None, env=None):
        """`subprocess.run(command, input=input, capture_output=True, text=True,
        timeout=timeout, env=env)`."""
        env = dict(os.environ if env is None else env)
        if not self._serves(command, env):
            return subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, env=env)
        with tempfile.TemporaryFile("w+") as stdin, tempfile.TemporaryFile("w+") as stdout, \
                tempfile.TemporaryFile("w+") as stderr:
            stdin.write(input)
            stdin.flush()
            stdin.seek(0)
            child = self._fork(command, env, [stdin.fileno(), stdout.fileno(), stderr.fileno()])
            try:
                code = child.wait(timeout)
            except TimeoutError:
                child.kill()
                raise subprocess.TimeoutExpired(command, timeout) from None
            stdout.seek(0)
            stderr.seek(0)
            return subprocess.CompletedProcess(command, code, stdout.read(), stderr.read())

    def _serves(self, command, env):
        with self._lock:
            if command[:2] != [sys.executable, "-m"]:
                return False
            before, now = _imported(self._env or env), _imported(env)
            if before != now:
                differ = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
                warnings.warn(f"{' '.join(command[2:4])}: a real process ({', '.join(differ)} changed)")
                return False
            if self._process is None:
                self._start(env)
            return True

    def _start(self, env):
        self._env, self._folder = dict(env), tempfile.mkdtemp(prefix="warm_python")
        self._process = subprocess.Popen([sys.executable, os.path.abspath(__file__), self._address, *self._modules],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the warm interpreter did not start (exit code {self._process.wait()})")

    @property
    def _address(self):
        return os.path.join(self._folder, "socket")

    def _fork(self, command, env, fds):
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        connection.connect(self._address)
        request = {"module": command[2], "args": command[3:], "cwd": os.getcwd(), "env": env}
        socket.send_fds(connection, [json.dumps(request).encode()], fds)
        return _Child(connection)

    def stop(self):
        """Stop serving (children still running finish on their own)."""
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()
                self._process.wait()
                os.remove(self._address)
                os.rmdir(self._folder)
                self._process = None


def _imported(env):
    return {k: v for k, v in env.items() if k in IMPORT_TIME or f"{k.split('_')[0]}_*" in IMPORT_TIME}


class _Child:
    """A forked child: its `pid`, `wait(timeout)` for its exit code, `kill()`."""

    def __init__(self, connection):
        self._connection = connection
        self.pid = int(self._receive())
        self.returncode = self.stderr = None

    def _receive(self):
        answer = self._connection.recv(64)
        if not answer:
            raise RuntimeError("the warm interpreter stopped before its child finished")
        return answer

    def wait(self, timeout=None):
        if self.returncode is None:
            self._connection.settimeout(timeout)
            self.returncode = int(self._receive())
            self._connection.close()
            if self.stderr is not None:
                self.stderr.close()
        return self.returncode

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)
        self._connection.settimeout(None)
        self.wait()


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
            message, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
            pid = os.fork()
            if pid == 0:  # the child holds only its own streams, none of the server's sockets
                for server_socket in (listener, connection, *children.values()):
                    server_socket.close()
                _run(json.loads(message), fds)  # never returns
            for fd in fds:
                os.close(fd)
            connection.send(str(pid).encode())
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
        except SystemExit as e:  # as the interpreter reports it
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported as the interpreter reports it, exit code 1
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
