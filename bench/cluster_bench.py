"""Fan-out on one Redis and on a 3-master Redis Cluster, beside the bare baseline, same run.

    .venv/bin/python bench/cluster_bench.py [--quick] [--subscribers 1000] [--rate 20]
        [--duration 30] [--client-procs 4]

Runs benchmark (b) of `bench/realtime_bench.py` (two instances, `--subscribers` sockets of
one support ticket split across them, staff replies through REST on instance A at `--rate`
events/s for `--duration` s) three times in one run:

- ours on a private `redis-server` (``REDIS_URL``);
- ours on a private 3-master Redis Cluster of `redis-server` processes
  (``REDIS_URL=redis+cluster://...``: sharded pub/sub, `realtime/cluster.py`), started with
  `tests/redis_cluster.py`;
- the bare Tornado fan-out server (`bench/bare_ws_server.py`, PUBLISH on the single Redis),
  frames padded to the size of ours.

Prints lost/duplicated deliveries, latency p50/p99, server CPU per 1,000 deliveries and
Redis CPU per 1,000 deliveries (all cluster nodes summed), and the ratios of both of ours to
the bare baseline. Not a test: it asserts nothing.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from realtime_bench import bench_frame, fanout, parse_args, start_redis  # noqa: E402
from realtime_report import load, print_fanout, ratio, summary  # noqa: E402
from redis_cluster import RedisClusterProcess  # noqa: E402
from ws_client import raise_nofile  # noqa: E402


def main(argv=None) -> None:
    args = parse_args(["b", *(argv if argv is not None else sys.argv[1:])])
    limit = raise_nofile()
    if limit < args.subscribers + 200:
        raise SystemExit(f"open-files limit {limit} is below {args.subscribers + 200}")
    print(f"cluster bench: {args.subscribers} subscribers of one channel on 2 instances, "
          f"{args.rate:g} events/s for {args.duration:g} s; load average {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hwc3d-clusterbench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        redis_proc, redis_url = start_redis(workdir)
        cluster = RedisClusterProcess(workdir / "cluster")
        cluster.start()
        try:
            args.redis_pids = [redis_proc.pid]
            single = fanout("ours", args, workdir, redis_url, stop_b=False, pad=0)
            args.redis_pids = [proc.pid for proc in cluster.procs]
            (workdir / "on-cluster").mkdir(exist_ok=True)
            sharded = fanout("ours", args, workdir / "on-cluster", cluster.url, stop_b=False,
                             pad=0)
            args.redis_pids = [redis_proc.pid]
            pad = max(0, round(single["bytes"] / max(1, single["frames"]))
                      - len(bench_frame(0, 0, 0)))
            bare = fanout("bare", args, workdir, redis_url, stop_b=False, pad=pad)
        finally:
            cluster.stop()
            redis_proc.terminate()
            redis_proc.wait(10)
    rows = [("redis", single), ("clustr", sharded), ("bare", bare)]
    print_fanout(f"results (redis: ours on one Redis; clustr: ours on the 3-master cluster); "
                 f"load average after {load()}", rows, args)
    s_bare = summary(bare)
    for name, result in rows[:2]:
        s = summary(result)
        print(f"ratios {name}/bare: latency p50 {ratio(s['p50'], s_bare['p50'])}, p99 "
              f"{ratio(s['p99'], s_bare['p99'])}, server CPU per 1k deliveries "
              f"{ratio(s['cpu_per_k'], s_bare['cpu_per_k'])}, Redis CPU per 1k "
              f"{ratio(s['redis_cpu_per_k'], s_bare['redis_cpu_per_k'])}; lost "
              f"{result['lost']}, duplicated {result['dups']}")


if __name__ == "__main__":
    main()
