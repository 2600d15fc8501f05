"""franz-go's own integration suite (`pkg/kgo` of the module as the Go module proxy serves it,
with its _test.go files) against a 3-node ferrolog cluster, replication factor 3, as its
README runs it against Kafka (KGO_SEEDS, KGO_TEST_RF, KGO_TEST_RECORDS). Every test that passes
against Apache Kafka 4.1.1 must pass here; the suite's own skips (SASL, TLS, share groups
without a share-group broker) stay skipped."""

import json
import os
import re
import shutil
import tempfile
import subprocess

from test_cluster import Cluster

FRANZ_GO = "github.com/twmb/franz-go@v1.22.3"
RECORDS = os.environ.get("KGO_TEST_RECORDS", "2000")

# Tests of the suite that race against themselves on Apache Kafka too; a failure of one of these
# is retried alone (up to twice) before it counts. Each entry says what races and what Kafka did.
RACY_ON_KAFKA = {
    # Its consume loop stops once it has seen as many topics as it wants, but counts
    # __consumer_offsets (the group's own coordinator records) among them, so the loop can end
    # before its second topic arrived. Under stress-ng --cpu 4 it failed 7 of 25 runs on a 3-node
    # Kafka 4.1.1 and 4 of 25 on ferrolog, both "did not consume from <topic>".
    "Test848RegexBrokerResolves",
}


def module_dir():
    out = subprocess.run(["go", "mod", "download", "-json", FRANZ_GO], capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(out.stdout)["Dir"]


def go_test(source, env, *args):
    run = subprocess.run(["go", "test", "./pkg/kgo", "-count=1", "-timeout", "20m", "-v", *args],
                         cwd=source, env=env, capture_output=True, text=True, timeout=1500)
    return run.returncode, run.stdout + run.stderr


def failures(log):
    return sorted(set(re.findall(r"^\s*--- FAIL: (\S+)", log, re.M)))


def test_franz_go_kgo_suite():
    source = module_dir()
    cluster = Cluster()
    try:
        env = dict(os.environ, KGO_SEEDS=cluster.bootstrap, KGO_TEST_RF="3",
                   KGO_TEST_RECORDS=RECORDS, GOFLAGS="-mod=mod")
        returncode, log = go_test(source, env)
        with open(os.path.join(cluster.dir, "kgo.log"), "w") as f:
            f.write(log)
        failed = failures(log)
        passed = len(re.findall(r"^\s*--- PASS: ", log, re.M))
        print(f"franz-go kgo suite: {passed} passed, {len(failed)} failed")
        racy = [name for name in failed if name in RACY_ON_KAFKA]
        if racy and len(racy) == len(failed):
            for attempt in range(2):
                print(f"retrying alone, racy on Kafka too: {racy}")
                retry_code, retry_log = go_test(source, env, "-run", "^(" + "|".join(racy) + ")$")
                if retry_code == 0 and not failures(retry_log):
                    returncode, failed = 0, []
                    break
        if failed:
            # the failing tests' own output, and the nodes' logs kept for a look afterwards
            kept = shutil.copytree(cluster.dir, tempfile.mkdtemp(prefix="kgo-failed-"), dirs_exist_ok=True)
            for name in failed:
                print("\n".join(line for line in log.splitlines() if name in line or "_test.go" in line)[-5000:])
            print(f"logs kept in {kept}")
        assert returncode == 0 and not failed, \
            f"failed: {failed}\n" + "\n".join(log.splitlines()[-40:]) + cluster.logs()
        assert passed > 100, log[-3000:]
    finally:
        cluster.stop()
        shutil.rmtree(cluster.dir, ignore_errors=True)
