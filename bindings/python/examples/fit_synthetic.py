#!/usr/bin/env python3
"""Fit a DisRNN to synthetic data and print the group-aligned latent R^2 and a checksum of the
fitted parameters.

The recipe is shared with the C, C++ and Rust versions (examples/downstream/README.md): the data
come from the library itself (a ground-truth model generated with fixed seeds), so every
language prints the same three result lines.

    python3 bindings/python/examples/fit_synthetic.py
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import disrnn  # noqa: E402

N, K, GROUPS, TRIALS, BINS = 20, 4, [2, 2], 4, 250


def fnv1a64(values):
    """FNV-1a (64-bit) over the little-endian bytes of each value's IEEE-754 bits."""
    h = 0xcbf29ce484222325
    for b in struct.pack("<%dd" % len(values), *[float(v) for v in values]):
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    print("fit_synthetic (Python): libdisrnn %s" % disrnn.version())

    # Ground truth: a random DisRNN with two groups of two latents, latent noise s = 0.05.
    with disrnn.Config(N, K, groups=GROUPS, seed=1, std_mode=disrnn.STD_FIXED, std_value=0.05) as cfg:
        truth = disrnn.Model(cfg)
    data = disrnn.Dataset(N, 0, disrnn.DATA_CONTINUOUS)
    reference = []
    for r in range(TRIALS):
        x, z = truth.generate(BINS, flags=disrnn.GEN_LATENT_NOISE | disrnn.GEN_OBS_NOISE, seed=100 + r)
        data.add_trial(x)
        reference.extend(float(v) for v in (z.ravel() if hasattr(z, "ravel") else z))
    truth.close()

    # The fitted model: same shape, its own seed, a PC penalty.
    with disrnn.Config(N, K, groups=GROUPS, seed=2, beta=1.0) as cfg:
        model = disrnn.Model(cfg)
    last = {}

    def progress(p):
        last["loss"] = p.terms[disrnn.TERM_LOSS]

    with disrnn.Trainer(model, data, seed=3, epochs=30, batch_size=100, lr=0.02) as tr:
        tr.fit(progress)

    mu = model.latents(data)
    al = disrnn.align_r2(reference, GROUPS, mu, GROUPS)
    params = model.params()
    print("final loss: %.6f" % last["loss"])
    print("group-aligned R^2: %.6f" % al.r2)
    print("parameter checksum: %016x (%d values)" % (fnv1a64(params), len(params)))
    model.close()
    data.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except disrnn.DisrnnError as e:
        print("fit_synthetic: %s" % e, file=sys.stderr)
        sys.exit(1)
