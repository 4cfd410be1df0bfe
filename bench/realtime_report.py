"""Figures and printed tables of `bench/realtime_bench.py` and `bench/cluster_bench.py`."""
from __future__ import annotations

import os


def pct(values, q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ratio(ours: float, bare: float) -> str:
    return f"{ours / bare:.2f}x" if bare else "n/a"


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"



def summary(result: dict) -> dict:
    lat, hub = result["latency"], result["hub_latency"]
    per_k = result["deliveries"] / 1000 or 1
    return {"p50": pct(lat, .5), "p99": pct(lat, .99), "max": max(lat, default=float("nan")),
            "hub_p50": pct(hub, .5), "hub_p99": pct(hub, .99),
            "cpu_per_k": result["server_cpu"] / per_k,
            "client_cpu_per_k": result["client_cpu"] / per_k,
            "redis_cpu_per_k": result["redis_cpu"] / per_k}


def print_fanout(title: str, rows: list[tuple[str, dict]], args) -> None:
    print(f"{title}")
    print(f"{'server':<6} {'subs':>5} {'events':>6} {'ev/s':>5} {'delivered':>9} {'expected':>9}"
          f" {'lost':>5} {'dup':>4} {'gaps':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
          f" {'srv CPU s':>9} {'CPU s/1k':>8} {'client s/1k':>11} {'redis s/1k':>10}")
    for name, r in rows:
        s = summary(r)
        pub = r["publish"]
        print(f"{name:<6} {r['ready']['ready']:>5} {len(pub['sent']):>6} {pub['rate']:>5.1f}"
              f" {r['deliveries']:>9} {r['expected']:>9} {r['lost']:>5} {r['dups']:>4}"
              f" {r['offset_gaps']:>4} {s['p50']:>7.1f} {s['p99']:>7.1f} {s['max']:>7.1f}"
              f" {r['server_cpu']:>9.2f} {s['cpu_per_k']:>8.4f} {s['client_cpu_per_k']:>11.4f}"
              f" {s['redis_cpu_per_k']:>10.4f}")
        extra = [f"publish call p50 {pub['p50_call']:.1f} ms p99 {pub['p99_call']:.1f} ms",
                 f"hub ts->receive p50 {s['hub_p50']:.1f} ms p99 {s['hub_p99']:.1f} ms",
                 f"connect {r['ready']['connect_seconds']:.1f} s",
                 f"frame {r['bytes'] / max(1, r['frames']):.0f} B avg",
                 (f"client CPU {r['client_cpu']:.1f} s over {r['wall']:.0f} s in "
                  f"{args.client_procs} procs")]
        if r["lost_subs"] or r["dup_subs"]:
            extra.append(f"subscribers with loss {r['lost_subs']}, with dups {r['dup_subs']}")
        if r["listen_overflows"]:
            extra.append(f"kernel listen-queue overflows during the run {r['listen_overflows']}")
        if r["offset_repeats"] or r["foreign"]:
            extra.append(f"offset repeats {r['offset_repeats']}, foreign seqs {r['foreign']}")
        if r["errors"]:
            extra.append(f"errors {r['errors']}")
        if pub["failures"]:
            extra.append(f"publish failures {pub['failures']}")
        print(f"{'':<6} " + "; ".join(extra))
        if r.get("gauge_a"):
            print(f"{'':<6} instance A after the run: {r['gauge_a']}")


def print_reconnects(name: str, r: dict) -> None:
    records = r["reconnects"]
    done = [x for x in records if x.get("ready") and not x.get("failed")]
    times = [(x["ready"] - x["closed"]) * 1000 for x in done]
    recovered = sum(1 for x in done if x.get("recovered"))
    unrecovered = [x for x in done if x.get("recovered") is False]
    missed = sum(x.get("missed") or 0 for x in done)
    failed = [x for x in records if x.get("failed") or x.get("unfinished")]
    print(f"{name:<6} reconnects {len(records)} (closes {r['closes']}), done {len(done)}, "
          f"recovered {recovered}, not recovered {len(unrecovered)}, failed {len(failed)}; "
          f"events replayed from history {missed}; reconnect time p50 {pct(times, .5):.0f} ms "
          f"p99 {pct(times, .99):.0f} ms max {max(times, default=float('nan')):.0f} ms")
    phases = [(label, [(x[key] - x["closed"]) * 1000 for x in done if x.get(key)])
              for label, key in (("upgraded", "upgraded"), ("connected frame", "connected"))]
    print(f"{'':<6} " + "; ".join(f"{label} after close p50 {pct(v, .5):.0f} ms max "
                                  f"{max(v):.0f} ms" for label, v in phases if v))
    if unrecovered:
        print(f"{'':<6} not recovered reasons: "
              f"{sorted({str(x.get('reason')) for x in unrecovered})}")
    if failed:
        print(f"{'':<6} failed: {failed[:3]}")
