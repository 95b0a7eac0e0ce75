#!/usr/bin/python3
"""The DisRNN training step written plainly in PyTorch, timed like bench_step.c times libdisrnn.

One step = gather a minibatch, linear encoder, one reparameterised draw, linear decoder, Gaussian
NLL with a learned per-channel log std rho, analytic KL, the importance-sampled group total
correlation ("PC", MODEL.md section 4) on the M x M x K tensor of pairwise log-densities, backward,
Adam. Double precision like the C library. Run by bench_step (same configuration, same thread
count, same timing: warm-up, then the median over blocks of steps); it prints one line
"RESULT us=... us_min=... rss_kb=..." or "SKIP reason" when torch is missing.

    /usr/bin/python3 bench/torch_step.py --N 20 --K 6 --G 2 --M 128 --threads 1
    /usr/bin/python3 bench/torch_step.py --fit            # the paper's synthetic fit, timed
"""
import argparse
import math
import resource
import sys
import time

try:
    import torch
except ImportError:
    print("SKIP PyTorch is not installed (Debian: apt-get install python3-torch)")
    sys.exit(0)


def group_slices(K, G):
    sizes = [K // G + (1 if g < K % G else 0) for g in range(G)]
    out, start = [], 0
    for h in sizes:
        out.append(slice(start, start + h))
        start += h
    return out


class DisRNN(torch.nn.Module):
    def __init__(self, N, K, G, n_tot, beta):
        super().__init__()
        self.enc = torch.nn.Linear(N, K)          # mu = B h + d
        self.dec = torch.nn.Linear(K, N)          # eta = A z + c
        self.rho = torch.nn.Parameter(torch.full((N,), -1.0))
        self.K, self.beta, self.n_tot = K, beta, float(n_tot)
        self.groups = group_slices(K, G)
        self.s = n_tot ** (-1.0 / (K + 4))        # Scott's rule, fixed

    def forward(self, xb, hb):
        M, K, s = xb.shape[0], self.K, self.s
        mu = self.enc(hb)
        z = mu + s * torch.randn_like(mu)
        eta = self.dec(z)
        nll = (0.5 * math.log(2 * math.pi) + self.rho
               + 0.5 * (xb - eta) ** 2 * torch.exp(-2 * self.rho)).sum(1).mean()
        kl = 0.5 * (mu ** 2 + s * s - 1 - 2 * math.log(s)).sum(1).mean()
        loss = nll + kl
        if self.beta > 0 and len(self.groups) > 1:
            # log N(z_ik; mu_jk, s^2) for every pair (i, j) and dimension k: M x M x K
            lk = -0.5 * ((z[:, None, :] - mu[None, :, :]) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
            logw = torch.full((M, M), math.log((self.n_tot - 1) / (M - 1)), dtype=xb.dtype)
            logw.fill_diagonal_(0.0)
            lq = torch.logsumexp(lk.sum(2) + logw, dim=1) - math.log(self.n_tot)
            lqg = sum(torch.logsumexp(lk[:, :, g].sum(2) + logw, dim=1) - math.log(self.n_tot)
                      for g in self.groups)
            pc = (lq - lqg).mean()
            loss = loss + self.beta * pc
        return loss


def make_data(N, T, seed=12345):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, N, generator=g)
    h = torch.tanh(torch.cat([x[:1], x[:-1]]))    # "repeat" padding, psi = [1]
    return x, h


class Stepper:
    """Shuffled minibatches of M samples, one optimiser step per call."""

    def __init__(self, model, x, h, M, opt):
        self.model, self.x, self.h, self.M, self.opt = model, x, h, M, opt
        self.T = x.shape[0]
        self.order, self.pos = torch.randperm(self.T), 0

    def step(self):
        if self.pos >= self.T:
            self.order, self.pos = torch.randperm(self.T), 0
        idx = self.order[self.pos:self.pos + self.M]
        self.pos += self.M
        loss = self.model(self.x[idx], self.h[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss


def time_steps(stepper, blocks, block_s, clock):
    t0, n = clock(), 0
    while n < 5 or clock() - t0 < 0.1:    # warm-up, as bench_step.c
        stepper.step()
        n += 1
    t_est = (clock() - t0) / n
    k = max(1, math.ceil(block_s / t_est))
    times = []
    for _ in range(blocks):
        tb = clock()
        for _ in range(k):
            stepper.step()
        times.append((clock() - tb) / k)
    times.sort()
    mid = len(times) // 2
    med = times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid])
    return med, times[0]


def paper_fit(epochs):
    """The paper's synthetic fit shape: N 20, K 6, (3, 3), beta 20, 1000 bins, batch 128, AdamW."""
    N, K, T = 20, 6, 1000
    x, h = make_data(N, T)
    model = DisRNN(N, K, 2, T, 20.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    stepper = Stepper(model, x, h, 128, opt)
    steps_per_epoch = math.ceil(T / 128)
    t0 = time.perf_counter()
    for _ in range(epochs * steps_per_epoch):
        stepper.step()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--N", type=int, default=20)
    p.add_argument("--K", type=int, default=6)
    p.add_argument("--G", type=int, default=2)
    p.add_argument("--M", type=int, default=128)
    p.add_argument("--T", type=int, default=1024)
    p.add_argument("--beta", type=float, default=20.0)
    p.add_argument("--n-tot", type=float, default=1000.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--blocks", type=int, default=15)
    p.add_argument("--block-ms", type=float, default=20.0)
    p.add_argument("--float32", action="store_true", help="single precision instead of double")
    p.add_argument("--fit", action="store_true", help="time the whole synthetic fit instead")
    p.add_argument("--fit-epochs", type=int, default=5000)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall clock or process CPU time (as bench_step --clock)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.set_default_dtype(torch.float32 if a.float32 else torch.float64)
    torch.manual_seed(1)

    if a.fit:
        secs = paper_fit(a.fit_epochs)
        print("RESULT seconds=%.4f rss_kb=%d" % (secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        return
    x, h = make_data(a.N, a.T)
    model = DisRNN(a.N, a.K, a.G, a.n_tot, a.beta)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    clock = time.perf_counter if a.clock == "wall" else time.process_time
    med, best = time_steps(Stepper(model, x, h, a.M, opt), a.blocks, a.block_ms / 1e3, clock)
    print("RESULT us=%.3f us_min=%.3f rss_kb=%d torch=%s" % (
        1e6 * med, 1e6 * best, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, torch.__version__))


if __name__ == "__main__":
    main()
