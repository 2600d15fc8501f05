"""The Java client (kafka-clients 4.x) and franz-go, built by scripts/test.sh, against ferrolog."""

import os
import subprocess

from conftest import ROOT

JAVA_DIR = os.path.join(ROOT, "interop", "java")
GO_BINARY = os.path.join(ROOT, "target", "interop-go")


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    print(result.stdout[-4000:], result.stderr[-4000:])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "0 failed" in result.stdout


def java(*args):
    classpath_file = os.path.join(JAVA_DIR, "target", "classpath.txt")
    jar = os.path.join(JAVA_DIR, "target", "interop-java-0.1.0.jar")
    assert os.path.exists(classpath_file) and os.path.exists(jar), "run scripts/test.sh (it builds interop/java)"
    classpath = open(classpath_file).read().strip()
    run(["java", "-cp", f"{jar}:{classpath}", "interop.Main", *args])


def test_java_client(broker):
    java(broker.bootstrap)


def test_java_consumer_protocol_group(fresh_broker):
    """group.protocol=consumer (KIP-848): join, a fourth member, leave, describe, list, commit."""
    b = fresh_broker(["group.consumer.heartbeat.interval.ms=500"])
    java(b.bootstrap, "consumer-protocol")


def test_franz_go(broker):
    assert os.path.exists(GO_BINARY), "run scripts/test.sh (it builds interop/go)"
    run([GO_BINARY, broker.bootstrap])
