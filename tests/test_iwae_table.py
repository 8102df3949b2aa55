"""The Table-1 script (``python scripts/iwae_table.py``): smoke run, JSON schema, and the committed results."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "book" / "data" / "iwae_table.json"
SCRIPT = ROOT / "scripts" / "iwae_table.py"
RUN_KEYS = {
    "objective",
    "k",
    "test_nll",
    "test_elbo",
    "test_iwae_bound",
    "test_kl",
    "active_units",
    "activity",
    "kl_per_dim",
    "z_dim",
    "final_train_loss",
    "train_loss_per_epoch",
    "train_seconds",
    "eval_seconds",
    "seconds",
}


def check_schema(result):
    """The JSON holds settings, one finite record per (objective, k), the paper's numbers and the machine."""
    assert {"settings", "runs", "paper", "machine", "total_seconds", "command"} <= set(result)
    s = result["settings"]
    for key in (
        "n_train",
        "n_test",
        "epochs",
        "batch_size",
        "lr",
        "k_list",
        "objectives",
        "eval_k",
        "architecture",
        "seed",
        "smoke",
        "active_unit_threshold",
    ):
        assert key in s, key
    pairs = [(r["objective"], r["k"]) for r in result["runs"]]
    assert pairs == [(o, k) for o in s["objectives"] for k in s["k_list"]]
    for r in result["runs"]:
        assert RUN_KEYS <= set(r), RUN_KEYS - set(r)
        for key in ("test_nll", "test_elbo", "final_train_loss", "train_seconds", "eval_seconds"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (key, r[key])
        assert r["test_nll"] > 0, "a negative log-likelihood of binary images is positive"
        assert math.isfinite(r["test_iwae_bound"]["value"])
        assert isinstance(r["active_units"], int) and 0 <= r["active_units"] <= r["z_dim"]
        assert len(r["activity"]) == len(r["kl_per_dim"]) == r["z_dim"]
        assert min(r["activity"]) >= 0 and min(r["kl_per_dim"]) >= 0
        assert r["active_units"] == sum(a > s["active_unit_threshold"] for a in r["activity"])
        assert abs(sum(r["kl_per_dim"]) - r["test_kl"]) < 1e-2 * max(1.0, r["test_kl"])
        assert len(r["train_loss_per_epoch"]) == s["epochs"]
        assert r["train_seconds"] > 0 and r["seconds"] >= r["train_seconds"]
    paper = result["paper"]
    assert paper["k"] == [1, 5, 50]
    assert paper["nll"]["iwae"][-1] < paper["nll"]["elbo"][-1]
    assert {"torch", "device", "python", "cpu_count"} <= set(result["machine"])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("iwae") / "table.json"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), VAECOURSE_DEVICE="cpu"
    )
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--no-progress", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote {out}" in proc.stdout
    return json.loads(out.read_text())


def test_smoke_run_writes_valid_json(smoke):
    """--smoke trains every (objective, k) pair and writes a well-formed, finite JSON."""
    check_schema(smoke)
    assert smoke["settings"]["smoke"] is True
    assert {r["objective"] for r in smoke["runs"]} == {"elbo", "iwae"}


def test_tighter_bounds_lie_above_the_elbo(smoke):
    """For each trained model: ELBO <= IWAE bound (K = bound_k) <= log p(x) estimate (K = eval_k).

    The three numbers are estimated independently (different samples, different code paths), so
    this checks the pipeline, not an identity; the tolerance covers Monte Carlo noise only."""
    tol = 0.5
    for r in smoke["runs"]:
        elbo, bound, log_px = r["test_elbo"], r["test_iwae_bound"]["value"], -r["test_nll"]
        assert bound >= elbo - tol, r
        assert log_px >= bound - tol, r
    # and on average the gap is real: more samples, a strictly tighter bound
    gaps = [-r["test_nll"] - r["test_elbo"] for r in smoke["runs"]]
    assert sum(gaps) / len(gaps) > 0.5


def test_bad_arguments_are_rejected():
    """Nonsense settings fail fast with an argparse error, before any training."""
    spec = importlib.util.spec_from_file_location("iwae_table", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    parse_args = script.parse_args

    with pytest.raises(SystemExit):
        parse_args(["--epochs", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--k", "0", "5"])
    for bad in (["--n-test", "1"], ["--n-train", "0"], ["--lr", "-1"], ["--lr", "nan"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
    args = parse_args(["--smoke", "--epochs", "4"])
    assert args.epochs == 4 and args.k_list == [1, 5]


@pytest.mark.skipif(not COMMITTED.exists(), reason="book/data/iwae_table.json not generated yet")
def test_committed_results_match_the_schema():
    """The JSON chapter 6 renders came from a full (non-smoke) run of this script."""
    result = json.loads(COMMITTED.read_text())
    check_schema(result)
    s = result["settings"]
    assert s["smoke"] is False and s["eval_k"] == 5000 and s["k_list"] == [1, 5, 50]
    for r in result["runs"]:
        assert -r["test_nll"] >= r["test_elbo"] - 0.5
