"""The benchmark runs in its quick mode, and both loops reach the same loss (no timing asserted)."""

import torch

from vaecourse import VAE
from vaecourse.bench import CanonicalVAE, main, summarize


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


def test_quick_benchmark_prints_table_losses_agree_and_chunking_is_exact(capsys):
    res = main(["--quick", "--device", "cpu"])  # what `python -m vaecourse.bench --quick` runs
    out = capsys.readouterr().out
    assert "| canonical |" in out and "| vc.train |" in out and "chunk sizes agree" in out
    s = summarize(res)
    a, b = s["canonical"]["loss"], s["vc.train"]["loss"]
    assert 100 < a < 400 and abs(a - b) / a < 0.03, (a, b)  # same loss after the same epochs
    assert s["canonical"]["samples_per_s"] > 0 and s["ratio"] > 0
    ll = res["log_likelihood"]
    assert ll[0]["chunk"] != ll[1]["chunk"] and all(torch.isfinite(r["estimates"]).all() for r in ll)
    # same seed, different chunk sizes: the same draws merged by logaddexp, equal up to float error
    torch.testing.assert_close(ll[0]["estimates"], ll[1]["estimates"], rtol=0, atol=1e-3)
