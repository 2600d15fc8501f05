"""franz-go's own kgo integration suite against a 3-node ferrolog and a 3-node Apache Kafka
4.1.1 (KRaft, each node broker+controller), one after the other in one run, optionally with
`stress-ng --cpu N` loading the machine. Prints, per system, passed/failed/skipped and the
failing tests, and the wall time of the suite.
Usage: python3 bench/kgo_suite.py [--stress N] [--records N]  (bench/kgo_suite.sh builds
ferrolog and fetches Kafka's jars first)."""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster  # noqa: E402

FRANZ_GO = "github.com/twmb/franz-go@v1.22.3"


def run_suite(bootstrap, records):
    source = json.loads(subprocess.run(["go", "mod", "download", "-json", FRANZ_GO], capture_output=True,
                                       text=True, check=True).stdout)["Dir"]
    env = dict(os.environ, KGO_SEEDS=bootstrap, KGO_TEST_RF="3", KGO_TEST_RECORDS=str(records),
               GOFLAGS="-mod=mod")
    started = time.time()
    run = subprocess.run(["go", "test", "./pkg/kgo", "-count=1", "-timeout", "30m", "-v"], cwd=source, env=env,
                         capture_output=True, text=True)
    log = run.stdout + run.stderr
    top = lambda kind: sorted(set(re.findall(rf"^--- {kind}: (\S+)", log, re.M)))
    return top("PASS"), top("FAIL"), top("SKIP"), time.time() - started


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--stress", type=int, default=0, help="stress-ng --cpu N beside the cluster")
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--only", choices=("ferrolog", "kafka"), help="run against one of the two")
    args = p.parse_args()
    for kind in [args.only] if args.only else ["ferrolog", "kafka"]:
        stress = subprocess.Popen(["stress-ng", "--cpu", str(args.stress)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) if args.stress else None
        cluster = Cluster(kind)
        try:
            passed, failed, skipped, seconds = run_suite(cluster.bootstrap, args.records)
        finally:
            cluster.stop()
            if stress:
                stress.kill()
                stress.wait()
        print(f"{kind}: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped, {seconds:.0f} s"
              + (f"; failed: {' '.join(failed)}" if failed else ""), flush=True)


if __name__ == "__main__":
    main()
