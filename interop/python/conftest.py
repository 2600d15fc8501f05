"""Starts the real ferrolog binary for interop tests with third-party clients."""

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("FERROLOG_BIN", os.path.join(ROOT, "target", "debug", "ferrolog"))


class Ferrolog:
    def __init__(self, overrides=(), args=()):
        self.dir = tempfile.mkdtemp(prefix="ferrolog-interop-")
        self.port = 0  # the OS picks a free port; the server logs which
        self.overrides = list(overrides)
        self.args = list(args)
        self.proc = None
        self.start()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        cmd = [BINARY, "server", "--data-dir", self.dir,
               "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:0"]
        for o in self.overrides:
            cmd += ["--override", o]
        cmd += self.args
        log_path = os.path.join(self.dir, "server.log")
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                with open(log_path, errors="replace") as f:
                    text = f.read()
                # the error line comes first, a backtrace (RUST_BACKTRACE) may follow
                raise RuntimeError(f"ferrolog exited with {self.proc.returncode}: {text[:2000]}")
            with open(log_path, errors="replace") as f:
                for line in f:
                    if "serving Kafka clients on " in line:
                        address = line.split("serving Kafka clients on ", 1)[1].split()[0]
                        self.port = int(address.rsplit(":", 1)[1])
            if self.port:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("ferrolog did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()

    def cli(self, *args, input=None):
        return subprocess.run([BINARY, *args], input=input, capture_output=True, text=True, timeout=60)


def kcat_env():
    """The environment kcat runs SCRAM in: Debian's kcat links librdkafka 2.0.2, whose SCRAM
    client-final message repeats its nonce (fixed in librdkafka 2.6.1), which Kafka 4 and
    ferrolog refuse; then kcat runs on the librdkafka the confluent-kafka wheel ships."""
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    m = re.search(r"librdkafka ([0-9.]+)", out)
    if m and tuple(int(x) for x in m[1].split(".")) >= (2, 6, 1):
        return dict(os.environ)
    import confluent_kafka
    libs = sorted(glob.glob(os.path.dirname(confluent_kafka.__file__) + ".libs/librdkafka*.so*"))
    assert libs, "kcat needs librdkafka 2.6.1 or later for SCRAM (pip install confluent-kafka)"
    d = tempfile.mkdtemp(prefix="rdkafka-")
    os.symlink(libs[0], os.path.join(d, "librdkafka.so.1"))
    return {**os.environ, "LD_LIBRARY_PATH": d}


def wait_for(what, check, timeout=60, detail=lambda: ""):
    """Polls `check` (exceptions count as not yet) until true; fails naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n" + detail())


@pytest.fixture(scope="module")
def broker():
    b = Ferrolog()
    yield b
    b.stop()
    shutil.rmtree(b.dir, ignore_errors=True)


@pytest.fixture
def fresh_broker():
    """A broker of its own, for tests that change broker settings."""
    made = []

    def make(overrides=()):
        b = Ferrolog(overrides)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)
