"""Benchmark: ``vc.train`` against the canonical PyTorch VAE loop, plus the cost of ``log_likelihood``.

    python -m benchmarks.bench              # full run (a few minutes on a 2-core CPU)
    python -m benchmarks.bench --quick      # seconds; what the test suite runs

The canonical loop is the pattern of pytorch/examples ``vae/main.py``: a 784-400-20-400-784 MLP with
separate ``fc21``/``fc22`` heads, ``sigmoid`` then ``binary_cross_entropy`` summed over the batch, the
closed-form KL, Adam(1e-3), batch 128, a ``DataLoader`` over a ``TensorDataset`` with shuffling, and
``loss.item()`` every step. ``vc.train`` trains the same architecture (``vc.VAE(784, 20, hidden=(400,))``)
through ``model.elbo`` and autograd, from the same initial weights on the same data (MNIST-5k train
split); what differs is how the loop is fed and stepped: the data resident on the device, one gather per
batch, ``Adam(fused=True)``, and the running sums read once per epoch. After an untimed warm-up of both,
runs are interleaved (canonical, ours, canonical, ours, ...) so that machine noise hits both alike.

A run lasts 40 epochs (1,280 steps), the length the chapters train for; the table also shows the first
and last quarter of the run.

Peak memory is, on a GPU, what torch allocated during the call; on a CPU, the process's resident memory
above its size at the start of the call (on Linux the kernel's own high-water mark).
"""

import argparse
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from vaecourse import VAE, get_device, load_mnist, set_seed, train

from .memory import PeakRSS

__all__ = ["CanonicalVAE", "canonical_train", "run_benchmark"]

LL_BATCH = 100  # test images per log_likelihood batch (its default)


class CanonicalVAE(nn.Module):
    """The VAE of pytorch/examples, written out as there (sigmoid output, separate heads)."""

    def __init__(self, x_dim=784, hidden=400, z_dim=20):
        super().__init__()
        self.fc1 = nn.Linear(x_dim, hidden)
        self.fc21 = nn.Linear(hidden, z_dim)
        self.fc22 = nn.Linear(hidden, z_dim)
        self.fc3 = nn.Linear(z_dim, hidden)
        self.fc4 = nn.Linear(hidden, x_dim)

    def forward(self, x):
        h1 = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def load_from(self, vae):
        """Copy the weights of a ``vc.VAE(784, z, hidden=(h,))`` so both start identical."""
        enc, dec = vae.encoder, vae.decoder
        z = vae.z_dim
        with torch.no_grad():
            self.fc1.load_state_dict(enc[0].state_dict())
            self.fc21.weight.copy_(enc[2].weight[:z]), self.fc21.bias.copy_(enc[2].bias[:z])
            self.fc22.weight.copy_(enc[2].weight[z:]), self.fc22.bias.copy_(enc[2].bias[z:])
            self.fc3.load_state_dict(dec[0].state_dict())
            self.fc4.load_state_dict(dec[2].state_dict())
        return self


def canonical_train(model, x, epochs, batch_size=128, lr=1e-3, device=None):
    """The pytorch/examples training loop; returns ``{"loss": [...], "seconds": [...]}`` per epoch
    (mean loss per example, wall-clock seconds), like the history of ``vc.train``."""
    device = get_device(device)
    model.to(device).train()
    loader = DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    hist = {"loss": [], "seconds": []}
    for _ in range(epochs):
        t0 = time.perf_counter()
        train_loss = 0.0
        for (data,) in loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            bce = F.binary_cross_entropy(recon, data, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = bce + kld
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        hist["loss"].append(train_loss / len(x))
        hist["seconds"].append(time.perf_counter() - t0)
    return hist


def _peak_memory(device):
    """Peak GPU memory allocated by torch since the last reset, in MiB."""
    return torch.cuda.max_memory_allocated() / 2**20


def run_benchmark(epochs=40, reps=5, device=None, ll_k=5000, ll_n=1000, chunks=(100, 1000), quick=False):
    """Run the comparison and the log-likelihood timing; return a dict of results."""
    device = get_device(device)
    data = load_mnist()
    x, x_test = data.x_train, data.x_test[:ll_n]
    n = x.shape[0]
    # untimed warm-up of both loops: thread pools, allocator and BLAS start-up are paid before timing
    warm = VAE(784, 20, hidden=(400,))
    canonical_train(CanonicalVAE().load_from(warm), x[:1024], 1, device=device)
    train(warm, x[:1024], epochs=1, device=device, progress=False)
    rows = []
    for rep in range(reps):
        set_seed(rep)
        ours = VAE(784, 20, hidden=(400,))
        canon = CanonicalVAE().load_from(ours)
        order = ("canonical", "vc.train") if rep % 2 == 0 else ("vc.train", "canonical")
        for name in order:
            set_seed(1000 + rep)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            with PeakRSS() as mem:  # on a CPU: resident memory above the start of the call
                t0 = time.perf_counter()
                if name == "canonical":
                    hist = canonical_train(canon, x, epochs, device=device)
                else:
                    hist = train(ours, x, epochs=epochs, device=device, progress=False)
                sec = time.perf_counter() - t0  # the whole call, set-up included
            rows.append(
                {
                    "rep": rep,
                    "loop": name,
                    "loss": hist["loss"][-1],
                    "seconds": sec,
                    "samples_per_s": n * epochs / sec,
                    "epoch_seconds": list(hist["seconds"]),
                    "peak_mib": _peak_memory(device) if device.type == "cuda" else mem.mib,
                }
            )
    ll = []
    for chunk in chunks:
        set_seed(7)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated() / 2**20  # the model, data and cuBLAS workspaces
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            est = ours.log_likelihood(x_test.to(device), k=ll_k, chunk=chunk, batch_size=LL_BATCH)
            if device.type == "cuda":
                torch.cuda.synchronize()
            sec = time.perf_counter() - t0
        peak = _peak_memory(device) - base if device.type == "cuda" else mem.mib  # above what was held
        ll.append(
            {
                "chunk": chunk,
                "k": ll_k,
                "n": len(x_test),
                "seconds": sec,
                "peak_mib": peak,
                "mean_log_likelihood": est.mean().item(),
                "estimates": est.cpu(),
            }
        )
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "epochs": epochs,
        "reps": reps,
        "n_train": n,
        "rows": rows,
        "log_likelihood": ll,
        "quick": quick,
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "torch": torch.__version__,
    }


def _speed(res, row, part):
    """Samples/s of one run: over the whole call, or over its first or last ``window`` epochs."""
    if part == "all":
        return row["samples_per_s"]
    w = _window(res)
    sec = row["epoch_seconds"][:w] if part == "first" else row["epoch_seconds"][-w:]
    return res["n_train"] * len(sec) / sum(sec)


def _window(res):
    return max(1, res["epochs"] // 4)


_PARTS = ("all", "first", "last")


def _median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _mib(value):
    return "-" if value is None else f"{value:.0f}"


def summarize(res):
    """Per loop: median samples/s over all epochs and over the first and last quarter of them,
    mean final loss. Per part: the median and range of the per-repetition speed-ups."""
    by = {}
    for r in res["rows"]:
        by.setdefault(r["loop"], []).append(r)
    out = {"window": _window(res)}
    for name, rs in by.items():
        out[name] = {part: statistics.median(_speed(res, r, part) for r in rs) for part in _PARTS}
        out[name].update(
            samples_per_s=out[name]["all"],
            loss=statistics.mean(r["loss"] for r in rs),
            peak_mib=_median_or_none([r["peak_mib"] for r in rs]),
        )
    # each repetition runs the two loops back to back, so its ratio sees one machine state
    for part in _PARTS:
        key = "ratio" if part == "all" else f"ratio_{part}"
        ratios = [_speed(res, o, part) / _speed(res, c, part) for c, o in zip(by["canonical"], by["vc.train"])]
        out[key] = statistics.median(ratios)
        out[f"{key}_range"] = (min(ratios), max(ratios))
    return out


def format_table(res):
    s = summarize(res)
    e, w = res["epochs"], s["window"]
    first, last = (f"epochs {a}-{b}" if a < b else f"epoch {a}" for a, b in ((1, w), (e - w + 1, e)))
    parts = [("whole run", "ratio", "all")]
    if 2 * w <= e:  # the first and last quarter are separate stretches of the run
        parts += [(first, "ratio_first", "first"), (last, "ratio_last", "last")]
    lines = [
        f"device: {res['device']} ({res['threads']} threads), torch {res['torch']}, {res['machine']}",
        f"training: MNIST-5k train split ({res['n_train']} images), {e} epoch{'s' * (e != 1)}, batch 128, "
        f"Adam 1e-3, median of {res['reps']} interleaved repetitions",
        "speed-up per repetition, median (range):",
    ]
    for label, key, _ in parts:
        lo, hi = s[f"{key}_range"]
        lines.append(f"  {label}: {s[key]:.2f}x ({lo:.2f}x to {hi:.2f}x)")
    windows = parts[1:]
    lines += [
        "",
        "| loop | samples/s | ratio | "
        + "".join(f"{label} | " for label, _, _ in windows)
        + "final train loss (nats) | peak memory (MiB) |",
        "| --- | ---: | ---: | " + "---: | " * len(windows) + "---: | ---: |",
    ]
    for name in ("canonical", "vc.train"):
        r = s[name]
        ratio = 1.0 if name == "canonical" else s["ratio"]
        peak = _mib(r["peak_mib"])
        cells = "".join(f"{r[part]:,.0f} | " for _, _, part in windows)
        lines.append(f"| {name} | {r['all']:,.0f} | {ratio:.2f}x | {cells}{r['loss']:.2f} | {peak} |")
    if res["device"].startswith("cuda"):
        lines.append("\npeak memory: GPU memory allocated by torch during the call (data and model included)")
    else:
        lines.append("\npeak memory: resident memory above the process's at the start of the call (median)")
    ll = res["log_likelihood"]
    lines += [
        "",
        f"log-likelihood, K = {ll[0]['k']}, {ll[0]['n']} test images:",
        "",
        "| chunk | seconds | peak extra memory (MiB) | mean log p(x) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in ll:
        cells = f"{r['seconds']:.1f} | {_mib(r['peak_mib'])} | {r['mean_log_likelihood']:.2f}"
        lines.append(f"| {r['chunk']} | {cells} |")
    if len(ll) > 1:
        diff = (ll[0]["estimates"] - ll[1]["estimates"]).abs()
        # different chunks draw different samples: the estimates agree to Monte Carlo error
        gap = abs(ll[0]["mean_log_likelihood"] - ll[1]["mean_log_likelihood"])
        lines.append(
            f"\nchunk sizes agree to Monte Carlo error: max |difference| per image {diff.max():.3f} nats, "
            f"mean {diff.mean():.4f}; means differ by {gap:.3f}"
        )
    return "\n".join(lines)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full, quick = dict(epochs=40, reps=5, ll_k=5000, ll_n=1000), dict(epochs=1, reps=2, ll_k=200, ll_n=100)
    p.add_argument("--epochs", type=_positive_int, help="epochs per repetition (default 40; --quick: 1)")
    p.add_argument("--reps", type=_positive_int, help="interleaved repetitions of both loops (default 5; --quick: 2)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: vc.get_device())")
    p.add_argument("--ll-k", type=_positive_int, help="importance samples per test image (default 5000; --quick: 200)")
    p.add_argument("--ll-n", type=_positive_int, help="test images (default all 1,000 of MNIST-5k; --quick: 100)")
    p.add_argument("--quick", action="store_true", help="small defaults for a smoke test; explicit values still apply")
    args = p.parse_args(argv)
    for name, default in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    try:
        get_device(args.device)
    except ValueError as err:  # e.g. --device cuda on a machine without a GPU
        p.error(str(err))
    chunks = (10, 100) if args.quick else (10, 1000)
    res = run_benchmark(args.epochs, args.reps, args.device, args.ll_k, args.ll_n, chunks, args.quick)
    print(format_table(res))
    return res


if __name__ == "__main__":
    main()
