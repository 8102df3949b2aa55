"""The capstone (ex7_capstone) graded end to end: do its bars separate good models from bad ones?

One module-scoped fixture copies the course into a temporary directory, releases ex7 there and
grades four submissions with ``grade.py`` (``make grade``: JOBS sandboxed kernels at once, the
course's own per-cell limit), timing it. The blank release, the typical bug and the delegating
answer are graded with every other assignment in the round trip (test_autograder.py):

* ``ref``       the reference solution;
* ``plain``     a correct solution written differently (separate mean and log-variance heads, tanh
                units, the Bernoulli log-likelihood from ``logsigmoid``, smaller batches and
                learning rate): it must clear every bar;
* ``collapsed`` the reference model trained, in Part B, with the KL weight of Part D (beta = 4):
                its posterior collapses, and its test ELBO and IWAE bound must miss the bars;
* ``broken``    an ELBO whose sample is detached from the encoder (``z.detach()``: no
                reparameterized gradient): the encoder learns from the KL alone and collapses;

The test ELBOs compared with the bars are the numbers each graded notebook printed (the package's
estimators run on the student's own encode/decode). Run with ``-s`` to see the report.
"""

import re
import subprocess
import sys
import time

import exercise_kit as kit
import pytest

pytestmark = pytest.mark.slow

A = kit.CAPSTONE
JOBS = 2  # submissions graded at once, as make grade does by default

PLAIN = {
    "VAE": '''
class VAE(nn.Module):
    """Gaussian encoder, Bernoulli MLP decoder, prior N(0, I)."""

    def __init__(self, x_dim, z_dim, hidden=256):
        super().__init__()
        self.x_dim = x_dim
        self.z_dim = z_dim
        self.hidden = nn.Linear(x_dim, hidden)
        self.to_mu = nn.Linear(hidden, z_dim)
        self.to_logvar = nn.Linear(hidden, z_dim)
        self.dec1 = nn.Linear(z_dim, hidden)
        self.dec2 = nn.Linear(hidden, x_dim)

    def encode(self, x):
        h = torch.tanh(self.hidden(x))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z):
        return self.dec2(torch.tanh(self.dec1(z)))

    def elbo(self, x, beta=1.0, free_bits=0.0):
        mu, logvar = self.encode(x)
        std = torch.exp(logvar / 2)
        z = mu + std * torch.randn(mu.shape, dtype=mu.dtype)
        logits = self.decode(z)
        log_px = (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(1)
        kl = -0.5 * (1 + logvar - mu**2 - std**2)  # (B, Z)
        if free_bits:
            low = kl.mean(dim=0) < free_bits  # dimensions under the floor
            kl = kl.masked_fill(low, free_bits)
        return log_px - beta * kl.sum(1)
''',
    "train_vae": """
def train_vae(model, x, epochs, lr=3e-3, batch_size=128, beta=1.0, free_bits=0.0):
    opt = torch.optim.Adam(model.parameters(), lr)
    n = x.shape[0]
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(n)
        epoch_sum = 0.0
        for start in range(0, n, batch_size):
            batch = x[order[start:start + batch_size]]
            loss = -model.elbo(batch, beta=beta, free_bits=free_bits).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch_sum += float(loss) * batch.shape[0]
        losses.append(epoch_sum / n)
    return losses
""",
    "train_plain": """
torch.manual_seed(0)  # keep this line: the same numbers on every run
model = VAE(64, 8, hidden=200)
history = train_vae(model, x_train, epochs=30, lr=1e-3, batch_size=64)
print(f"loss {history[0]:.2f} -> {history[-1]:.2f} nats")
""",
    "train_collapsed": """
torch.manual_seed(0)  # keep this line
collapsed = VAE(64, 8, hidden=200)
train_vae(collapsed, x_train, epochs=30, lr=1e-3, batch_size=64, beta=4.0)
""",
    "train_repaired": """
torch.manual_seed(0)  # keep this line
repaired = VAE(64, 8, hidden=200)
train_vae(repaired, x_train, 30, 1e-3, 64, beta=4.0, free_bits=0.5)
""",
}


def _reference(gid):
    return kit.strip_markers(kit.cell(kit.source_nb(A), gid).source)


def _collapsed():
    """The reference, but Part B trains its model with beta = 4 (the setting of Part D)."""
    src = _reference("train_plain")
    assert "epochs=40)" in src
    return {"train_plain": src.replace("epochs=40)", "epochs=40, beta=4.0)")}


def _broken():
    """The reference, but the sample is detached: no gradient reaches the encoder through z."""
    src = _reference("VAE")
    line = "z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)"
    assert line in src
    return {"VAE": src.replace(line, f"{line}\n        z = z.detach()")}


def _bars():
    """The bars the test cells hold: (ELBO, IWAE), from their one-line descriptions."""
    nb = kit.source_nb(A)
    elbo = re.search(r"bar of (-?\d+\.\d+) nats", kit.cell(nb, "test_test_elbo").source)
    iwae = re.search(r"clears (-?\d+\.\d+) nats", kit.cell(nb, "test_iwae").source)
    return float(elbo.group(1)), float(iwae.group(1))


def _printed(nb_path):
    """What the graded notebook's test cells printed: test ELBO, IWAE, and Part D's numbers."""
    nb = kit.read(nb_path)
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    found = {}
    for key, pattern in (
        ("elbo", r"test ELBO (-?\d+\.\d+) nats \(bar"),
        ("iwae", r"test IWAE bound (-?\d+\.\d+) nats"),
        ("collapsed", r"collapsed: (\d+) active units of 8, KL (\d+\.\d+) nats, test ELBO (-?\d+\.\d+)"),
        ("repaired", r"repaired: (\d+) active units of 8, KL (\d+\.\d+) nats, test ELBO (-?\d+\.\d+)"),
    ):
        m = re.search(pattern, text)
        if m:
            found[key] = float(m.group(1)) if m.lastindex == 1 else tuple(float(g) for g in m.groups())
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("capstone")
    ag = kit.make_course(tmp)
    rel = subprocess.run(
        [sys.executable, "release.py", A, "--keep-gradebook"], cwd=ag, capture_output=True, text=True, timeout=300
    )
    assert rel.returncode == 0, rel.stdout + rel.stderr
    release_root = tmp / "book" / "exercises"
    subs = {
        "ref": kit.solved(A, release_root=release_root),
        "plain": kit.solved(A, {k: v.strip("\n") for k, v in PLAIN.items()}, release_root=release_root),
        "collapsed": kit.solved(A, _collapsed(), release_root=release_root),
        "broken": kit.solved(A, _broken(), release_root=release_root),
    }
    for student, nb in subs.items():
        kit.write(nb, ag / "submitted" / student / A / f"{A}.ipynb")
    kit.venv_on_path()
    t0 = time.perf_counter()
    proc = subprocess.run(  # the command an instructor types (make grade), with the course's own limits
        [sys.executable, "grade.py", A, "--jobs", str(JOBS)], cwd=ag, capture_output=True, text=True, timeout=900
    )
    grading = time.perf_counter() - t0
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]

    # the student's check on the solved notebook, outside the course directory
    student_dir = tmp / "student"
    solved = kit.write(subs["ref"], student_dir / f"{A}.ipynb")
    t0 = time.perf_counter()
    val = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", str(solved)],
        cwd=student_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    validate = (val.returncode, val.stdout + val.stderr, time.perf_counter() - t0)

    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{ag / 'gradebook.db'}") as gb:
        for student in subs:
            sub = gb.find_submission(A, student)
            cells = {g.name: (g.score, g.max_score) for nb in sub.notebooks for g in nb.grades}
            scores[student] = dict(score=sub.score, max=sub.max_score, cells=cells)
    printed = {s: _printed(ag / "autograded" / s / A / f"{A}.ipynb") for s in subs}
    bars = _bars()
    report = ["", f"capstone {A}: bars test ELBO > {bars[0]}, IWAE (K = 500) > {bars[1]} nats"]
    for s in subs:
        p = printed[s]
        nums = ", ".join(f"{k} {v}" for k, v in p.items())
        report.append(f"  {s:10s} {scores[s]['score']:4.1f} / {kit.autograded_points(A)} automatic   {nums}")
    report.append(f"  grading: {grading:.1f} s for {len(subs)} submissions, {JOBS} at a time")
    report.append(f"  nbgrader validate (solved): {validate[2]:.1f} s")
    print("\n".join(report))
    return dict(scores=scores, printed=printed, bars=bars, grading=grading, n=len(subs), validate=validate)


def _auto():
    return kit.autograded_points(A)


def _cells(graded, student):
    return graded["scores"][student]["cells"]


def test_reference_scores_full_automatic_marks(graded):
    s = graded["scores"]["ref"]
    assert s["score"] == _auto() > 0, s["cells"]
    assert s["max"] == _auto() + kit.manual_points(A)


def test_plain_correct_solution_clears_every_bar(graded):
    s = graded["scores"]["plain"]
    assert s["score"] == _auto(), s["cells"]
    elbo_bar, iwae_bar = graded["bars"]
    p = graded["printed"]["plain"]
    assert p["elbo"] > elbo_bar and p["iwae"] > iwae_bar, p


@pytest.mark.parametrize("student", ["collapsed", "broken"])
def test_collapsed_and_broken_models_miss_the_bars(graded, student):
    cells = _cells(graded, student)
    assert cells["test_test_elbo"][0] == 0 and cells["test_iwae"][0] == 0, cells
    elbo_bar, iwae_bar = graded["bars"]
    p = graded["printed"][student]
    assert p["elbo"] < elbo_bar and p["iwae"] < iwae_bar, p
    assert 0 < graded["scores"][student]["score"] < _auto(), cells  # the rest of the work still counts


def test_broken_elbo_loses_the_formula_points(graded):
    """A detached sample passes the value checks but not the gradient through z."""
    assert _cells(graded, "broken")["test_elbo_formula"][0] == 0


def test_bars_have_margins_both_ways(graded):
    """The reference clears each bar by at least 1.5 nats; the collapsed model misses it by 1."""
    elbo_bar, iwae_bar = graded["bars"]
    ref, collapsed = graded["printed"]["ref"], graded["printed"]["collapsed"]
    assert ref["elbo"] > elbo_bar + 1.5 and ref["iwae"] > iwae_bar + 1.5, ref
    assert collapsed["elbo"] < elbo_bar - 1 and collapsed["iwae"] < iwae_bar - 1, collapsed


def test_part_d_measures_collapse_and_repair(graded):
    """The reference's Part D: beta = 4 leaves no active unit; free bits bring them back."""
    active, kl, elbo = graded["printed"]["ref"]["collapsed"]
    assert active <= 1 and kl < 0.5
    active_r, kl_r, elbo_r = graded["printed"]["ref"]["repaired"]
    assert active_r >= 6 and kl_r >= 2 and elbo_r > elbo + 1


def test_grading_time_per_submission(graded):
    """Each submission trains three models in the sandbox. Every cell kept within the per-cell limit
    (the reference's full marks say so); a submission took 36 s and 59 s to grade in two runs on
    the shared 2-core machine: the bound is twice the per-cell limit, a sanity check, not a benchmark."""
    per = graded["grading"] * JOBS / graded["n"]  # JOBS submissions are graded at once
    assert per < 120, f"{per:.0f} s per submission"


def test_validate_of_the_capstone_is_under_a_minute(graded):
    code, out, seconds = graded["validate"]
    assert code == 0 and "Success! Your notebook passes all the tests." in out, out[-2000:]
    assert seconds < 60, f"nbgrader validate took {seconds:.0f} s"
