"""Streams served by a real tritonserver, next to the embedded pool and a lone local stream.

    python benchmarks/serve_bench.py [--rounds 7] [--max-batch 64] [--json]

Reference model: the keyword LSTM 40->128x2 + Linear(10) (random weights), compact step graph,
served from a Python-backend repository (edgernn.runtime inside Triton) by the tritonserver
this machine has (nvidia-pytriton's CPU build), on 127.0.0.1, with the client in this process
(gRPC asyncio: every sequence has one request in flight). Client and server share this
machine's cores.

For 1, 64 and 256 concurrent sequences on 1 and 2 model instances: stream-steps/s and p50/p99
per-request latency; next to them the embedded pool (``pool.step_many`` over as many streams,
one thread) and one local stream. Where a request's time goes comes from Triton's statistics
endpoint: the time in the server (queue + model) against what the client measured (the rest is
gRPC, serialisation and the client). The compared paths alternate within each of ``--rounds``
rounds (this machine has slow phases); figures are medians of the round medians (p99: median
of the round p99s). Last, the server's resident memory (server and backend stub) before and
after the first round and at the end (growth after warm-up would be a leak).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONCURRENCY = (1, 64, 256)
STEPS = {1: 300, 64: 20, 256: 10}           # steps per sequence in one block (~300-2500 requests)
INSTANCES = (1, 2)


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group (the server and its stubs)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1024.0


async def served_block(client, model: str, name_in: str, frames: np.ndarray, conc: int,
                       steps: int, first_id: int):
    """``conc`` sequences of ``steps`` requests each, all in flight together."""
    import tritonclient.grpc as grpcclient

    latencies: list[int] = []

    async def sequence(k: int):
        inp = grpcclient.InferInput(name_in, [1, frames.shape[1]], "FP32")
        inp.set_data_from_numpy(frames[k % len(frames)][None])
        for t in range(steps):
            t0 = time.perf_counter_ns()
            await client.infer(model, [inp], sequence_id=first_id + k, sequence_start=t == 0,
                               sequence_end=t == steps - 1)
            latencies.append(time.perf_counter_ns() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(sequence(k) for k in range(conc)))
    return np.array(latencies), time.perf_counter() - t0


async def stats(client, model: str) -> dict:
    doc = (await client.get_inference_statistics(model, as_json=True))["model_stats"][0]
    s = doc["inference_stats"]
    ns = {k: int(s.get(k, {}).get("ns", 0)) for k in ("success", "queue", "compute_input",
                                                        "compute_infer", "compute_output")}
    ns["count"] = int(s.get("success", {}).get("count", 0))
    ns["executions"] = int(doc.get("execution_count", 0))
    return ns


def pool_block(model, frames: np.ndarray, conc: int, steps: int):
    pool = model.pool()
    ids = [pool.open() for _ in range(conc)]
    x = np.stack([frames[k % len(frames)] for k in range(conc)])
    calls = []
    t0 = time.perf_counter()
    for _ in range(steps):
        c0 = time.perf_counter_ns()
        pool.step_many(ids, x)
        calls.append(time.perf_counter_ns() - c0)
    wall = time.perf_counter() - t0
    for i in ids:
        pool.close(i)
    return np.array(calls), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    doc = asyncio.run(run(args))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print(doc)


async def run(args) -> dict:
    import tritonclient.grpc.aio as aio

    from edgernn.exporters import export
    from edgernn.models import build
    from edgernn.runtime import load
    from edgernn.serving import Options, Server, write_repository
    from edgernn.tasks import get_task

    config = get_task("classify").model
    tmp = Path(tempfile.mkdtemp(prefix="edgernn-sbench-"))
    path = export(build(config, seed=0), tmp / "kw.onnx").path
    repo = tmp / "repo"
    for n in INSTANCES:
        write_repository(path, repo, Options(name=f"i{n}", instances=n,
                                             max_batch_size=args.max_batch))
    model = load(path, threads=1)
    frames = np.random.default_rng(0).normal(size=(256, config.input_size)).astype(np.float32)
    log = open(tmp / "server.log", "wb")
    server = Server(repo, log=log).start()
    client = aio.InferenceServerClient(server.grpc_url)
    try:
        rss_start = group_rss_mb(server.process.pid)
        served = {(n, c): {"lat": [], "rate": [], "p99": [], "stats": []}
                  for n in INSTANCES for c in CONCURRENCY}
        local = {c: {"lat": [], "rate": [], "p99": []} for c in CONCURRENCY}
        lone = []
        next_id, rss_warm = 1, None
        for _ in range(args.rounds):
            for c in CONCURRENCY:
                for n in INSTANCES:
                    before = await stats(client, f"i{n}")
                    lat, wall = await served_block(client, f"i{n}", model.input.name, frames, c,
                                                   STEPS[c], next_id)
                    after = await stats(client, f"i{n}")
                    next_id += c
                    r = served[(n, c)]
                    r["lat"].append(np.median(lat))
                    r["p99"].append(np.percentile(lat, 99))
                    r["rate"].append(len(lat) / wall)
                    r["stats"].append({k: after[k] - before[k] for k in after} |
                                      {"client_ns": float(lat.sum())})
                lat, wall = pool_block(model, frames, c, max(STEPS[c], 50))
                local[c]["lat"].append(np.median(lat))
                local[c]["p99"].append(np.percentile(lat, 99))
                local[c]["rate"].append(c * len(lat) / wall)
            stream = model.stream()
            ts = []
            for t in range(300):
                t0 = time.perf_counter_ns()
                stream.step(frames[t % 256])
                ts.append(time.perf_counter_ns() - t0)
            lone.append(np.median(ts))
            rss_warm = rss_warm or group_rss_mb(server.process.pid)
        rss_end = group_rss_mb(server.process.pid)
    finally:
        await client.close()
        server.stop()
        log.close()
    requests = sum(len(r["rate"]) * c * STEPS[c] for (n, c), r in served.items())
    return _summarise(served, local, lone, (rss_start, rss_warm, rss_end), args, requests)


def _summarise(served, local, lone, rss, args, requests) -> dict:
    med = lambda v: float(np.median(v))                                    # noqa: E731
    rows = []
    for (n, c), r in served.items():
        s = {k: sum(d[k] for d in r["stats"]) for k in r["stats"][0]}
        count = max(s["count"], 1)
        server_us = s["success"] / count / 1e3
        client_us = s["client_ns"] / count / 1e3
        rows.append({"path": "triton", "instances": n, "sequences": c,
                     "steps_per_s": med(r["rate"]), "p50_us": med(r["lat"]) / 1e3,
                     "p99_us": med(r["p99"]) / 1e3,
                     "mean_client_us": client_us, "mean_server_us": server_us,
                     "mean_queue_us": s["queue"] / count / 1e3,
                     "mean_model_us": (s["compute_input"] + s["compute_infer"] +
                                       s["compute_output"]) / count / 1e3,
                     "transport_share": max(0.0, 1 - server_us / client_us),
                     "mean_batch": s["count"] / max(s["executions"], 1)})
    for c, r in local.items():
        rows.append({"path": "pool", "instances": 0, "sequences": c,
                     "steps_per_s": med(r["rate"]), "p50_us": med(r["lat"]) / 1e3,
                     "p99_us": med(r["p99"]) / 1e3})
    rows.append({"path": "stream", "instances": 0, "sequences": 1,
                 "steps_per_s": 1e9 / med(lone), "p50_us": med(lone) / 1e3, "p99_us": None})
    return {"model": "LSTM 40->128x2 + Linear(10), compact step graph, fp32",
            "server": "tritonserver 2.51 (nvidia-pytriton 0.7.0, CPU), Python backend",
            "cores": __import__("os").cpu_count(), "rounds": args.rounds,
            "max_batch": args.max_batch, "requests_served": requests, "rows": rows,
            "server_rss_mb": dict(zip(("start", "after_round_1", "end"), rss))}


def _print(doc) -> None:
    print(f"{doc['model']}\n{doc['server']}; {doc['cores']} cores shared by client and server; "
          f"max batch {doc['max_batch']}; {doc['rounds']} rounds, medians of round medians\n")
    print(f"{'path':<22}{'seqs':>5}{'steps/s':>10}{'p50 us':>9}{'p99 us':>9}"
          f"{'server us':>11}{'queue':>8}{'model':>8}{'transport':>11}{'batch':>7}")
    for r in doc["rows"]:
        name = {"triton": f"triton, {r['instances']} instance{'s' * (r['instances'] > 1)}",
                "pool": "embedded pool", "stream": "lone local stream"}[r["path"]]
        p99 = f"{r['p99_us']:9.0f}" if r["p99_us"] is not None else f"{'-':>9}"
        line = f"{name:<22}{r['sequences']:>5}{r['steps_per_s']:>10.0f}{r['p50_us']:>9.0f}{p99}"
        if r["path"] == "triton":
            line += (f"{r['mean_server_us']:>11.0f}{r['mean_queue_us']:>8.0f}"
                     f"{r['mean_model_us']:>8.0f}{r['transport_share']:>10.0%}"
                     f"{r['mean_batch']:>7.1f}")
        print(line)
    rss = doc["server_rss_mb"]
    print(f"\nserver + stub resident memory: {rss['start']:.1f} MB idle, "
          f"{rss['after_round_1']:.1f} MB after round 1, {rss['end']:.1f} MB after "
          f"{doc['requests_served']} requests")
    print("server us: request time inside Triton (queue + model); transport: the client's "
          "share beyond it (gRPC, serialisation, asyncio); batch: requests per model call")


if __name__ == "__main__":
    main()
