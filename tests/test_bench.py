"""The benchmark runs in its quick mode, and both loops reach the same loss (no timing asserted)."""

import pytest
import torch

from benchmarks.bench import CanonicalVAE, format_table, main, summarize
from benchmarks.memory import PeakRSS
from vaecourse import VAE


def test_canonical_model_starts_from_the_same_weights():
    torch.manual_seed(0)
    ours = VAE(784, 20, hidden=(400,))
    canon = CanonicalVAE().load_from(ours)
    x = torch.rand(5, 784)
    mu, logvar = ours.encode(x)
    h = torch.relu(canon.fc1(x))
    torch.testing.assert_close(canon.fc21(h), mu)
    torch.testing.assert_close(canon.fc22(h), logvar)
    z = torch.randn(5, 20)
    torch.testing.assert_close(torch.sigmoid(canon.fc4(torch.relu(canon.fc3(z)))), ours.decode_mean(z))


def test_quick_benchmark_prints_table_losses_agree_and_chunks_agree(capsys):
    res = main(["--quick", "--device", "cpu"])  # what `python -m benchmarks.bench --quick` runs
    out = capsys.readouterr().out
    assert "| canonical |" in out and "| vc.train |" in out and "chunk sizes agree" in out
    assert "1 epoch," in out and "epoch 1" not in out  # one epoch: no first/last-quarter columns
    s = summarize(res)
    a, b = s["canonical"]["loss"], s["vc.train"]["loss"]
    assert 100 < a < 400 and abs(a - b) / a < 0.03, (a, b)  # same loss after the same epochs
    assert f"| vc.train | {s['vc.train']['samples_per_s']:,.0f} | {s['ratio']:.2f}x |" in out  # the ratio printed
    peaks = [r["peak_mib"] for r in res["rows"]] + [r["peak_mib"] for r in res["log_likelihood"]]
    assert all(p is not None and p >= 0 for p in peaks), peaks  # measured on a CPU too
    assert "peak memory: resident memory above" in out
    ll = res["log_likelihood"]
    assert ll[0]["chunk"] != ll[1]["chunk"] and all(torch.isfinite(r["estimates"]).all() for r in ll)
    # two chunk sizes, one estimator: the estimates agree to Monte Carlo error (K = 200 per image)
    assert (ll[0]["estimates"] - ll[1]["estimates"]).abs().mean() < 0.5
    assert abs(ll[0]["mean_log_likelihood"] - ll[1]["mean_log_likelihood"]) < 0.2


def test_summary_takes_pairwise_ratios_and_epoch_windows():
    """Synthetic timings: the ratios are per repetition, over the whole call and the first and
    last quarter of the epochs, then the median across repetitions."""

    def row(rep, loop, epoch_seconds, total):
        n_epochs = len(epoch_seconds)
        return {
            "rep": rep,
            "loop": loop,
            "loss": 1.0,
            "seconds": total,
            "samples_per_s": 100 * n_epochs / total,
            "epoch_seconds": epoch_seconds,
            "peak_mib": None,
        }

    slow = [1.0] * 4 + [2.0] * 4  # the canonical loop slows down halfway
    flat = [0.5] * 8
    res = {"epochs": 8, "n_train": 100, "rows": []}
    for rep, factor in enumerate((1.0, 2.0, 1.5)):  # the machine's speed drifts between repetitions
        res["rows"] += [
            row(rep, "canonical", [t * factor for t in slow], 12.0 * factor),
            row(rep, "vc.train", [t * factor for t in flat], 4.0 * factor),
        ]
    s = summarize(res)
    assert s["window"] == 2
    approx = pytest.approx
    assert s["ratio"] == approx(3.0) and s["ratio_range"] == approx((3.0, 3.0))
    assert s["ratio_first"] == approx(2.0) and s["ratio_last"] == approx(4.0)
    assert s["canonical"]["first"] == approx(100 * 2 / (2 * 1.5))  # median over the repetitions
    res.update(device="cpu", threads=2, reps=3, machine="x", torch="t", quick=False)
    ll = {"chunk": 1, "k": 2, "n": 3, "seconds": 1.0, "peak_mib": None, "mean_log_likelihood": -1.0}
    res["log_likelihood"] = [ll]
    table = format_table(res)
    assert "| loop | samples/s | ratio | epochs 1-2 | epochs 7-8 |" in table
    assert "| vc.train | 133 | 3.00x | 133 | 133 | 1.00 | - |" in table  # medians: 100 x 8 / (4 x 1.5), ...
    assert "  epochs 7-8: 4.00x (4.00x to 4.00x)" in table
    assert "| 1 | 1.0 | - | -1.00 |" in table  # memory that could not be measured: a dash, not a crash


def test_peak_memory_sees_a_short_lived_allocation():
    """The training table's CPU memory column: 64 MiB allocated and freed inside the block is seen."""
    import time

    with PeakRSS() as mem:
        t = torch.ones(2**24)  # 64 MiB, written, so resident
        time.sleep(0.02)  # where the resident size is sampled (no /proc), give the sampler a turn
        del t
    if mem.mib is None:
        pytest.skip("resident memory cannot be measured here (no /proc and no psutil)")
    assert 60 <= mem.mib < 200, mem.mib
    with PeakRSS() as idle:
        pass
    assert idle.mib < 30, idle.mib  # nothing allocated: the peak is measured from the block's start


def test_device_without_support_is_a_clean_command_line_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda"])
    assert exit_info.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


def test_peak_memory_without_proc_samples_with_psutil_or_reports_nothing(monkeypatch):
    """macOS and Windows have no /proc: psutil samples the resident size; without psutil, None."""
    import sys
    import time

    from benchmarks import memory

    def no_proc(field):
        raise OSError("no /proc here")

    monkeypatch.setattr(memory, "_status_kib", no_proc)
    pytest.importorskip("psutil")
    with PeakRSS() as mem:
        t = torch.ones(2**24)
        time.sleep(0.05)
        del t
    assert 60 <= mem.mib < 200, mem.mib
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` now fails
    with PeakRSS() as mem:
        pass
    assert mem.mib is None


@pytest.mark.parametrize("args", [["--reps", "0"], ["--epochs", "-1"], ["--ll-n", "0"], ["--ll-k", "x"]])
def test_counts_below_one_are_command_line_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err


def test_quick_sets_small_defaults_and_explicit_values_still_apply(monkeypatch):
    import benchmarks.bench as bench

    calls = []  # run_benchmark's (epochs, reps, device, ll_k, ll_n): nothing is trained here
    monkeypatch.setattr(bench, "run_benchmark", lambda *args: calls.append(args[:5]) or {})
    monkeypatch.setattr(bench, "format_table", lambda res: "")
    main(["--device", "cpu"])
    main(["--quick", "--device", "cpu"])
    main(["--quick", "--device", "cpu", "--epochs", "2", "--ll-n", "7"])
    main(["--device", "cpu", "--reps", "3", "--ll-k", "50"])
    assert calls == [
        (40, 5, "cpu", 5000, 1000),
        (1, 2, "cpu", 200, 100),
        (2, 2, "cpu", 200, 7),  # --quick sets defaults only: what was asked for wins
        (40, 3, "cpu", 50, 1000),
    ]
