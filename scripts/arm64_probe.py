"""Runs on the device side only (edgernn.runtime): stream seeded frames through each model given,
alone and in a pool of three streams with loud and silent neighbours, and save outputs and
final states to an .npz; and hold each integer product path of the int8 kernels here to the
exact sums for every weight and activation byte. Used by arm64_check.py on x86 and under qemu."""

import sys

import numpy as np

import edgernn.runtime as rt
from edgernn.runtime import kernels

out_path, paths = sys.argv[1], sys.argv[2:]
results = {}
for path in paths:
    model = rt.load(path, threads=1)
    stream = model.stream()
    x = np.random.default_rng(0).normal(size=(300, *stream.frame_shape)).astype(np.float32)
    ys = np.concatenate([stream.feed(x[:100]), np.stack([stream.step(f) for f in x[100:]])])
    name = path.rsplit("/", 1)[-1]
    results[f"{name}:y"] = ys
    results[f"{name}:kernels"] = np.array(model.kernels)   # edgernn's int8 kernels ran it
    for k, v in stream.state.items():
        results[f"{name}:{k}"] = v
    pool = model.pool()
    ids = [pool.open() for _ in range(3)]
    pooled = []
    for f in x[:100]:
        out = pool.step({ids[0]: f * 20.0, ids[1]: f, ids[2]: np.zeros_like(f)})
        pooled.append(out[ids[1]])
    results[f"{name}:pool"] = np.stack(pooled)
every = np.arange(256)
for k in (1, 31, 32, 33, 256, 257):
    w = np.stack([np.resize(np.roll(every, 37 * r + k), k) for r in range(5)]).astype(np.uint8)
    for q in (np.resize(np.roll(every, k) - 128, k), np.full(k, -128)):
        exact = (w.astype(np.int64) - 128) @ q.astype(np.int64)
        pair = np.stack([q, q[::-1]])                     # a pool's rows go in pairs
        exact_pair = pair.astype(np.int64) @ (w.astype(np.int64) - 128).T
        for name in kernels.paths():
            got = kernels.product(name, q.astype(np.int8), w)
            key = f"product:{name}"
            results[key] = max(results.get(key, 0), int(np.abs(got - exact).max()))
            got = kernels.product(name, pair.astype(np.int8), w)
            results[key] = max(results[key], int(np.abs(got - exact_pair).max()))
np.savez(out_path, **results)
print("ok", len(paths))
