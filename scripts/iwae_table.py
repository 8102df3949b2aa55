"""Burda, Grosse & Salakhutdinov (2016), Table 1 in miniature: VAE vs IWAE at k = 1, 5, 50.

For each objective ("elbo" = the VAE, "iwae" = the importance-weighted bound) and each number of
samples k, train a fresh VAE on MNIST-5k and report on the test images:
    test NLL       -log p(x) estimated by importance sampling with K = 5000 (``model.log_likelihood``),
    test ELBO      the one-sample ELBO of the same model (a looser bound, for comparison),
    active units   latent dimensions with Cov_x(E_q[z_j]) > 0.01 (as ``vc.active_units``; the
                   per-dimension activity and KL are saved too),
    seconds        wall-clock time spent training and evaluating.
The results go to one JSON file with the settings, the paper's numbers and the machine it ran on;
chapter 6 ({ref}`ch-iwae`) renders it.

Run (the full table takes ~15 minutes on two CPU cores; a GPU is picked up by ``vc.get_device``)::

    python scripts/iwae_table.py --out book/data/iwae_table.json
    python scripts/iwae_table.py --smoke --out /tmp/iwae_smoke.json      # seconds, for tests

The full settings (``FULL`` below) keep the paper's model: 784-200-200-50 with tanh units, Bernoulli
pixels, dynamic binarization of the training images, Adam with lr 1e-3, and the test NLL of all
1,000 test images with K = 5000. What differs, to fit a 2-core CPU budget: 4,000 training images
instead of 60,000; 40 epochs of batch 50 for every run (k = 50 costs ~50x a k = 1 epoch, about 5 s
on two cores) instead of 3,280 passes (3^i epochs at each of 8 decaying learning rates); and the
test images are binarized once with a fixed seed.

Papers: Burda et al. 2016 (IWAE; the 5000-sample estimate and the active-unit count, section 5).
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import torch

from vaecourse import VAE, binarize, gaussian_kl_per_dim, get_device, latent_activity, load_mnist, set_seed, train

__all__ = ["PAPER_TABLE1", "parse_args", "run_one", "machine_info", "main"]

# Burda et al. 2016, Table 1, MNIST, one stochastic layer (50 units): test NLL in nats and active units.
PAPER_TABLE1 = {
    "source": "Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, Table 1 "
    "(MNIST, 1 stochastic layer)",
    "k": [1, 5, 50],
    "nll": {"elbo": [86.76, 86.47, 86.35], "iwae": [86.76, 85.54, 84.78]},
    "active_units": {"elbo": [19, 20, 20], "iwae": [19, 22, 25]},
}

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016, section 5.2
FULL = dict(
    epochs=40,
    k_list=[1, 5, 50],
    hidden=[200, 200],
    z_dim=50,
    batch_size=50,
    lr=1e-3,
    n_train=None,
    n_test=1000,
    eval_k=5000,
    eval_chunk=1000,
    bound_k=50,
)
SMOKE = dict(
    epochs=3,
    k_list=[1, 5],
    hidden=[64],
    z_dim=8,
    batch_size=100,
    lr=1e-3,
    n_train=1000,
    n_test=200,
    eval_k=100,
    eval_chunk=50,
    bound_k=20,
)


def parse_args(argv=None):
    """Command-line options; anything left unset takes its value from the full or the smoke preset."""
    p = argparse.ArgumentParser(prog="python scripts/iwae_table.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="book/data/iwae_table.json", help="where to write the JSON results")
    p.add_argument("--smoke", action="store_true", help="tiny settings that run in seconds (for CI)")
    p.add_argument("--epochs", type=int, help="training epochs per run (full: 40)")
    p.add_argument("--k", dest="k_list", type=int, nargs="+", help="numbers of samples k (full: 1 5 50)")
    p.add_argument("--objectives", nargs="+", default=["elbo", "iwae"], choices=["elbo", "iwae"])
    p.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (full: 200 200)")
    p.add_argument("--z-dim", dest="z_dim", type=int, help="latent dimension (full: 50)")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--n-train", dest="n_train", type=int, help="use only the first N training images")
    p.add_argument("--n-test", dest="n_test", type=int, help="evaluate on the first N test images")
    p.add_argument("--eval-k", dest="eval_k", type=int, help="importance samples for log p(x) (5000)")
    p.add_argument("--eval-chunk", dest="eval_chunk", type=int, help="samples decoded at once")
    p.add_argument("--bound-k", dest="bound_k", type=int, help="K of the IWAE bound also reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: vc.get_device())")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the tqdm bars")
    args = p.parse_args(argv)
    preset = SMOKE if args.smoke else FULL
    for key, value in preset.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for key in ("epochs", "z_dim", "batch_size", "eval_k", "eval_chunk", "bound_k", "n_train", "threads"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    if args.n_test < 2:
        p.error("--n-test must be >= 2 (active units are a variance over test images)")
    if any(k < 1 for k in args.k_list) or any(h < 1 for h in args.hidden):
        p.error("--k and --hidden take positive integers")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error("--lr must be a positive number")
    return args


def machine_info(device):
    """Where the numbers came from: enough to judge the timings."""
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_data(args):
    """MNIST-5k: grey-level training images (binarized per batch while training) and test images
    binarized once with a fixed seed, so every model is scored on the same binary digits."""
    data = load_mnist()
    x_train = data.x_train if args.n_train is None else data.x_train[: args.n_train]
    x_test = binarize(data.x_test[: args.n_test], seed=args.seed + 1)
    return x_train, x_test


def run_one(objective, k, x_train, x_test, args, device):
    """Train one model with ``objective`` at ``k`` samples and evaluate it: returns a dict of results."""
    set_seed(args.seed)
    model = VAE(x_train.shape[1], args.z_dim, hidden=tuple(args.hidden), activation="tanh")
    t0 = time.perf_counter()
    history = train(
        model,
        x_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        objective=objective,
        k=k,
        device=device,
        progress=args.progress,
        dynamic_binarization=True,
    )
    train_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    x = x_test.to(device)
    set_seed(args.seed + 2)
    with torch.no_grad():
        elbo = model.elbo(x).mean().item()
        bound = model.iwae_bound(x, args.bound_k).mean().item()
        mu, logvar = model.encode(x)
        kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)  # (Z,)
    log_px = model.log_likelihood(x, k=args.eval_k, chunk=args.eval_chunk, progress=args.progress)
    activity = latent_activity(model, x)  # (Z,): Cov_x(E_q[z_j])
    au = int((activity > ACTIVE_THRESHOLD).sum())
    eval_seconds = time.perf_counter() - t0
    return {
        "objective": objective,
        "k": k,
        "test_nll": -log_px.mean().item(),
        "test_elbo": elbo,
        "test_iwae_bound": {"k": args.bound_k, "value": bound},
        "test_kl": kl_per_dim.sum().item(),
        "active_units": au,
        "activity": [round(v, 6) for v in activity.tolist()],
        "kl_per_dim": [round(v, 6) for v in kl_per_dim.tolist()],
        "z_dim": args.z_dim,
        "final_train_loss": history["loss"][-1],
        "train_loss_per_epoch": history["loss"],
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "seconds": train_seconds + eval_seconds,
    }


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    x_train, x_test = load_data(args)
    settings = {
        "smoke": args.smoke,
        "data": "MNIST-5k (vc.load_mnist): first n_train training images, first n_test test images",
        "n_train": int(x_train.shape[0]),
        "n_test": int(x_test.shape[0]),
        "binarization": "train: dynamic (Bernoulli per batch); test: fixed (vc.binarize, seed + 1)",
        "architecture": {
            "hidden": list(args.hidden),
            "z_dim": args.z_dim,
            "activation": "tanh",
            "likelihood": "bernoulli",
        },
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": "Adam",
        "k_list": list(args.k_list),
        "objectives": list(args.objectives),
        "eval_k": args.eval_k,
        "eval_chunk": args.eval_chunk,
        "bound_k": args.bound_k,
        "active_unit_threshold": ACTIVE_THRESHOLD,
        "seed": args.seed,
    }
    runs = []
    t_start = time.perf_counter()
    for objective in args.objectives:
        for k in args.k_list:
            r = run_one(objective, k, x_train, x_test, args, device)
            runs.append(r)
            print(
                f"{objective:4s} k={k:<3d} NLL={r['test_nll']:.2f} ELBO={r['test_elbo']:.2f} "
                f"AU={r['active_units']} ({r['seconds']:.0f} s)",
                flush=True,
            )
    result = {
        "settings": settings,
        "runs": runs,
        "paper": PAPER_TABLE1,
        "machine": machine_info(device),
        "total_seconds": time.perf_counter() - t_start,
        "command": " ".join(["python scripts/iwae_table.py", *(sys.argv[1:] if argv is None else argv)]),
    }
    bad = [r for r in runs if not all(math.isfinite(r[key]) for key in ("test_nll", "test_elbo"))]
    if bad:
        raise FloatingPointError(f"non-finite results for {[(r['objective'], r['k']) for r in bad]}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out} ({result['total_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
