"""Fixtures for the Python client tests: the real inferd daemon.

Environment (set by tests/python/CMakeLists.txt):
  INFERD_BIN            the daemon binary
  INFERD_INFERCTL       the inferctl binary (README examples)
  INFERD_PYTHON_STUBS   <build>/python, the generated stubs
  PYTHONPATH            clients/python (the package under test)
  INFERD_SOURCE_DIR     the source tree (README.md)
A Python without grpc (e.g. a pyenv one) makes the whole run exit 77, which
CTest reports as skipped; anything else that is missing is a failure.
"""

import os
import re
import subprocess
import threading

import pytest

try:
    import grpc  # noqa: F401
    _GRPC_ERROR = None
except ImportError as e:  # pragma: no cover - depends on the interpreter
    _GRPC_ERROR = e


def pytest_sessionstart(session):
    if _GRPC_ERROR is not None:
        pytest.exit("grpc is not importable by this Python (install python3-grpcio): %s" %
                    _GRPC_ERROR, returncode=77)

_PORT_RE = re.compile(r"gRPC listening on \S+ \(port (\d+)\)")
_METRICS_RE = re.compile(r"metrics on \S+ \(port (\d+)\)")


class Daemon(object):
    """A running build/bin/inferd on a free loopback port. Its output is
    drained by a thread (so the pipe never fills) and kept for messages."""

    def __init__(self, args, start_timeout=30.0):
        binary = os.environ.get("INFERD_BIN")
        if not binary or not os.path.isfile(binary):
            raise RuntimeError("INFERD_BIN does not name the inferd binary: %r" % binary)
        self.proc = subprocess.Popen([binary] + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._lines = []
        self._cv = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        with self._cv:
            self._cv.wait_for(lambda: self._eof or any("inferd: serving:" in l for l in self._lines),
                              timeout=start_timeout)
            log = "".join(self._lines)
        m = _PORT_RE.search(log)
        if "inferd: serving:" not in log or not m:
            self.stop()
            raise RuntimeError("inferd did not start:\n" + log)
        self.port = int(m.group(1))
        mm = _METRICS_RE.search(log)
        self.metrics_port = int(mm.group(1)) if mm else 0
        self.target = "127.0.0.1:%d" % self.port

    def _read(self):
        for line in self.proc.stdout:
            with self._cv:
                self._lines.append(line)
                self._cv.notify_all()
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    def log(self):
        with self._cv:
            return "".join(self._lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)


@pytest.fixture(scope="session")
def daemon():
    """inferd on two host devices, no metrics port."""
    d = Daemon(["--grpc-listen=127.0.0.1:0", "--metrics-listen=", "--host-devices=2"])
    yield d
    d.stop()
