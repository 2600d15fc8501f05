"""kafkajs (installed by scripts/test.sh into interop/node) against ferrolog: a consumer group."""

import os
import subprocess

from conftest import ROOT

NODE_DIR = os.path.join(ROOT, "interop", "node")


def test_kafkajs_group(fresh_broker):
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs")), "run scripts/test.sh (it installs kafkajs)"
    b = fresh_broker(["group.initial.rebalance.delay.ms=0"])
    result = subprocess.run(["node", "groups.js", b.bootstrap], cwd=NODE_DIR, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0 and "0 failed" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
