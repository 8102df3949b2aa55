"""Helpers for the exercise and autograder tests: run nbgrader, build fake student submissions.

Submissions are made the way a student makes them: start from the released notebook and type into
the answer cells. ``solved`` fills in the reference solutions; ``WRONG`` holds one typical bug per
assignment; ``DELEGATED`` answers that hand the work to vaecourse, torch.distributions or the model's
estimators; ``CHEATS`` turns a notebook into one of the ways of gaming an autograder.
"""

import contextlib
import copy
import io
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
RELEASE = REPO / "book" / "exercises"
AUTOGRADER = REPO / "autograder"
ASSIGNMENTS = sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").is_file())
CAPSTONE = "ex7_capstone"  # graded end to end, with models written for it, in test_capstone.py
COURSE_FILES = (
    "nbgrader_config.py",
    "vaecourse_grader.py",
    "vaecourse_guard.py",
    "vaecourse_sandbox.py",
    "vaecourse_submissions.py",
    "vaecourse_export.py",
    "release.py",
    "grade.py",
)


# ----------------------------------------------------------------------------- running nbgrader


def venv_on_path():
    """Put the running interpreter's bin/ first on PATH (nbgrader calls `alembic` when it creates a
    gradebook, and kernels must be this environment's)."""
    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def nbgrader(*args, cwd):
    """Run ``nbgrader ARGS`` in this process from ``cwd`` (where nbgrader_config.py is read).

    Same code path as the command line without paying its start-up time. Returns ``(code, log)``.
    """
    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    venv_on_path()
    log = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    app = NbGraderApp.instance()
    code = 0
    try:
        app.initialize([str(a) for a in args])
        app.init_logging(logging.StreamHandler, [log], color=False, subapps=True)
        app.start()
    except NoStart:
        pass
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        app.reset()
        NbGraderApp.clear_instance()
        os.chdir(old)
    return code, log.getvalue()


def make_course(root):
    """Copy the course (solutions/ and autograder/'s code) into ``root`` with the repo's layout.

    The config finds ``../solutions`` and ``../book/exercises`` from its own location, so the copy is
    a complete, independent course directory: ``root / "autograder"``.
    """
    root = Path(root)
    shutil.copytree(SOLUTIONS, root / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "autograder").mkdir(parents=True)
    (root / "book" / "exercises").mkdir(parents=True)
    for name in COURSE_FILES:
        shutil.copy(AUTOGRADER / name, root / "autograder" / name)
    return root / "autograder"


# ----------------------------------------------------------------------------- notebooks


def read(path):
    return nbformat.read(str(path), as_version=4)


def write(nb, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def source_nb(assignment):
    return read(SOLUTIONS / assignment / f"{assignment}.ipynb")


def release_nb(assignment, release_root=RELEASE):
    return read(Path(release_root) / assignment / f"{assignment}.ipynb")


def nbgrader_md(cell):
    md = cell.get("metadata", {}).get("nbgrader")
    return md if isinstance(md, dict) else {}


def grade_id(cell):
    return nbgrader_md(cell).get("grade_id")


def is_test(cell):
    md = nbgrader_md(cell)
    return bool(md.get("grade")) and not md.get("solution") and cell.cell_type == "code"


def is_answer(cell):
    return bool(nbgrader_md(cell).get("solution"))


def strip_markers(source):
    """The reference answer as a student would type it: solution markers removed."""
    lines = [ln for ln in source.splitlines() if not re.match(r"\s*#*\s*(BEGIN|END) SOLUTION", ln)]
    return "\n".join(lines)


def cell(nb, gid):
    for c in nb.cells:
        if grade_id(c) == gid:
            return c
    raise KeyError(gid)


def solved(assignment, overrides=None, release_root=RELEASE):
    """The released notebook with every answer cell filled in (reference answers unless overridden)."""
    nb = copy.deepcopy(release_nb(assignment, release_root))
    ref = source_nb(assignment)
    overrides = overrides or {}
    for c in nb.cells:
        if is_answer(c):
            gid = grade_id(c)
            c.source = overrides[gid] if gid in overrides else strip_markers(cell(ref, gid).source)
    return nb


def autograded_points(assignment):
    """Sum of the points of the automatically graded (test) cells of an assignment."""
    return sum(nbgrader_md(c).get("points", 0) for c in source_nb(assignment).cells if is_test(c))


def manual_points(assignment):
    return sum(
        nbgrader_md(c).get("points", 0)
        for c in source_nb(assignment).cells
        if nbgrader_md(c).get("grade") and nbgrader_md(c).get("solution")
    )


# ----------------------------------------------------------------------------- typical mistakes

# One realistic bug per assignment (answer cell id -> what the student typed). Each must lose
# some, but not all, of the automatically graded points.
WRONG = {
    "ex1_latent_models": {
        "ancestral_sample": (
            "def ancestral_sample(n, W, b, obs_std):\n"
            "    z = torch.randn(n, W.shape[1], dtype=W.dtype)\n"
            "    return z, z @ W.T + b  # forgot the observation noise"
        ),
    },
    "ex2_elbo": {
        "mc_elbo": (
            "def mc_elbo(model, x, k):\n"
            "    mu, logvar = model.encode(x)\n"
            "    z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, dtype=mu.dtype)\n"
            "    log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)\n"
            "    return (model.log_px_z(x, z) + log_pz).mean(0)  # forgot - log q(z|x)"
        ),
    },
    "ex3_gaussian_kl": {
        "gaussian_kl": (
            "def gaussian_kl(mu, logvar):\n"
            "    return (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)  # forgot the factor 1/2"
        ),
    },
    "ex4_reparameterization": {
        "score_function_grads": (
            "def score_function_grads(f, mu, logvar, n):\n"
            "    z = reparameterize(mu, logvar, n).detach()\n"
            "    return f(z)[:, None] * (z - mu)  # forgot to divide by sigma^2"
        ),
        "best_diagonal": (
            "def best_diagonal(model, x):\n"
            "    W, b, s2 = model.W, model.b, torch.exp(model.obs_logvar)\n"
            "    cov = torch.linalg.inv(torch.eye(model.z_dim, dtype=W.dtype) + W.T @ W / s2)\n"
            "    mu = (x - b) @ W @ cov / s2\n"
            "    return mu, torch.log(torch.diagonal(cov)).expand_as(mu)  # not 1 / diag(precision)"
        ),
    },
    "ex5_posterior_collapse": {
        "free_bits_kl": (
            "def free_bits_kl(kl_per_dim, free_bits):\n"
            "    return kl_per_dim.clamp(min=free_bits).sum(-1)  # floor per example, not on the batch mean"
        ),
    },
    "ex6_iwae": {
        "iwae_bound": (
            "def iwae_bound(log_w):\n"
            "    return torch.log(torch.exp(log_w).mean(0))  # underflows for very negative log-weights"
        ),
    },
    "ex7_capstone": {
        "train_vae": (
            "def train_vae(model, x, epochs, lr=3e-3, batch_size=128, beta=1.0, free_bits=0.0):\n"
            "    optimizer = torch.optim.Adam(model.parameters(), lr=lr)\n"
            "    history = []\n"
            "    for _ in range(epochs):\n"
            "        total = 0.0\n"
            "        for idx in torch.randperm(len(x)).split(batch_size):\n"
            "            loss = -model.elbo(x[idx], beta, free_bits).mean()\n"
            "            optimizer.zero_grad()\n"
            "            loss.backward()\n"
            "            optimizer.step()\n"
            "            total += loss * len(idx)  # forgot .item(): history holds tensors\n"
            "        history.append(total / len(x))\n"
            "    return history"
        ),
    },
}


# ----------------------------------------------------------------------------- delegation

# Per assignment, answers that hand the function asked for to vaecourse, torch.distributions or the
# model's own estimators (answer cell id -> what the student typed). Each must score at most half of
# the automatic points: the function's tests all fail, not only an "own work" test.
DELEGATED = {
    "ex1_latent_models": {
        "ancestral_sample": (
            "def ancestral_sample(n, W, b, obs_std):\n"
            "    prior = torch.distributions.Normal(torch.zeros(W.shape[1], dtype=W.dtype), 1.0)\n"
            "    z = prior.sample((n,))\n"
            "    return z, z @ W.T + b + obs_std * torch.randn(n, W.shape[0], dtype=W.dtype)"
        ),
        "grid_posterior": (
            "def grid_posterior(log_lik, z_grid):\n"
            "    dz = z_grid[1] - z_grid[0]\n"
            "    log_joint = log_lik + torch.distributions.Normal(0.0, 1.0).log_prob(z_grid)\n"
            "    log_px = torch.logsumexp(log_joint, dim=-1) + torch.log(dz)\n"
            "    return torch.exp(log_joint - log_px.unsqueeze(-1)), log_px"
        ),
    },
    "ex2_elbo": {
        "mc_elbo": "def mc_elbo(model, x, k):\n    return model.elbo(x, k=k)",
        "identity_terms": (
            "def identity_terms(model, x, k):\n"
            "    return model.log_marginal(x), model.exact_elbo(x), vc.LinearGaussianVAE.kl_to_posterior(model, x)"
        ),
    },
    "ex3_gaussian_kl": {
        "gaussian_kl": "import vaecourse as vc\n\ndef gaussian_kl(mu, logvar):\n    return vc.gaussian_kl(mu, logvar)",
        "kl_by_hand": (
            "mu, var = torch.tensor([2.0, 0.0]), torch.tensor([0.25, 4.0])\n"
            "kl_terms = vc.gaussian_kl_per_dim(mu, var.log()).tolist()\n"
            "kl_by_hand = sum(kl_terms)"
        ),
        "gaussian_log_likelihood": (
            "def gaussian_log_likelihood(x, mean, logvar):\n    return vc.gaussian_log_likelihood(x, mean, logvar)"
        ),
        "squared_error_form": (
            "def squared_error_form(d, obs_var):\n"
            "    zero = torch.zeros(d, dtype=torch.float64)\n"
            "    const = -vc.gaussian_log_likelihood(zero, zero, math.log(obs_var)).item()\n"
            "    return 1 / (2 * obs_var), const"
        ),
    },
    "ex4_reparameterization": {
        "reparameterize": (
            "import vaecourse as vc\n\n"
            "def reparameterize(mu, logvar, k=None, *, eps=None):\n"
            "    return vc.reparameterize(mu, logvar, k, eps=eps)"
        ),
        "score_function_grads": (
            "def score_function_grads(f, mu, logvar, n):\n"
            "    mu = mu.detach().expand(n, -1).clone().requires_grad_()\n"
            "    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar.detach()))\n"
            "    z = q.sample()\n"
            "    (score,) = torch.autograd.grad(q.log_prob(z).sum(), mu)\n"
            "    return f(z)[:, None] * score"
        ),
        "pathwise_grads": (
            "def pathwise_grads(f, mu, logvar, n):\n"
            "    mu = mu.detach().expand(n, -1).clone().requires_grad_()\n"
            "    z = torch.distributions.Normal(mu, torch.exp(0.5 * logvar.detach())).rsample()\n"
            "    return torch.autograd.grad(f(z).sum(), mu)[0]"
        ),
        "best_diagonal": (  # the package's optimum, read off a copy of the model
            "import copy\n\n"
            "def best_diagonal(model, x):\n"
            "    best = copy.deepcopy(model).set_optimal_encoder()\n"
            "    return best.encode(x)"
        ),
        "gaps": (  # the exact posterior, KL and Gaussians of the package and torch.distributions
            "def gaps(model, x):\n"
            "    mean, cov = model.posterior(x)\n"
            "    post = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)\n"
            "    var = 1 / torch.diagonal(torch.linalg.inv(cov))\n"
            "    best = torch.distributions.MultivariateNormal(mean, covariance_matrix=torch.diag(var))\n"
            "    approx = torch.distributions.kl_divergence(best, post)\n"
            "    return approx, model.kl_to_posterior(x) - approx"
        ),
    },
    "ex5_posterior_collapse": {
        "linear_warmup": "def linear_warmup(warmup):\n    return vc.LinearSchedule(warmup)",
        "free_bits_kl": "def free_bits_kl(kl_per_dim, free_bits):\n    return vc.free_bits_kl(kl_per_dim, free_bits)",
        "ppca_rate": (  # each used direction's KL from the package's Gaussian KL
            "def ppca_rate(eigenvalues, obs_var, z_dim):\n"
            "    lam = eigenvalues.double().sort(descending=True).values[:z_dim]\n"
            "    used = lam[lam > obs_var]\n"
            "    kl = vc.gaussian_kl(torch.sqrt(1 - obs_var / used), torch.log(obs_var / used))\n"
            "    return len(used), float(kl)"
        ),
    },
    "ex6_iwae": {
        "iwae_bound": "def iwae_bound(log_w):\n    return vc.iwae_bound(log_w)",
        "log_weights": (
            "def log_weights(model, x, z):\n"
            "    mu, logvar = model.encode(x)\n"
            "    return model.log_px_z(x, z) + vc.log_standard_normal(z) - vc.log_normal(z, mu, logvar)"
        ),
        "iwae_estimate": "def iwae_estimate(model, x, k):\n    return model.iwae_bound(x, k)",
    },
    "ex7_capstone": {  # the package's VAE and training loop under the student's names
        "VAE": (
            "class VAE(vc.VAE):\n"
            "    def __init__(self, x_dim, z_dim, hidden=256):\n"
            "        super().__init__(x_dim, z_dim, hidden=(hidden,))"
        ),
        "train_vae": (
            "def train_vae(model, x, epochs, lr=3e-3, batch_size=128, beta=1.0, free_bits=0.0):\n"
            "    history = vc.train(model, x, epochs=epochs, lr=lr, batch_size=batch_size, beta=beta,\n"
            "                       free_bits=free_bits, progress=False)\n"
            "    return history['loss']"
        ),
    },
}


# ----------------------------------------------------------------------------- cheating
# Each function takes the released notebook (deep-copied) and returns the cheating submission.
# They are written for ex3_gaussian_kl, the representative assignment.


def _answer(nb, gid, source):
    cell(nb, gid).source = source
    return nb


def cheat_hardcoded(nb):
    """Return the values the visible tests print, whatever the input."""
    _answer(nb, "gaussian_kl", "def gaussian_kl(mu, logvar):\n    return torch.tensor(3.125)")
    _answer(nb, "kl_by_hand", "kl_terms = [3.125, 0.0]\nkl_by_hand = 3.125")
    _answer(
        nb,
        "gaussian_log_likelihood",
        "def gaussian_log_likelihood(x, mean, logvar):\n    return torch.tensor(-math.log(2 * math.pi) - 2.5)",
    )
    _answer(nb, "squared_error_form", "def squared_error_form(d, obs_var):\n    return 0.5, 0.0")
    return nb


ALWAYS_EQUAL = '''
class Anything(float):
    """Equal to everything, close to everything, and claims to be whatever is asked."""
    def __new__(cls, value=3.125):
        return super().__new__(cls, value)
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __abs__(self): return Anything(0.0)
    def __sub__(self, other): return Anything(0.0)
    __rsub__ = __sub__
    def __bool__(self): return True
    def __len__(self): return 2
    def __iter__(self): return iter([Anything(), Anything()])
    def __getitem__(self, i): return Anything()
    def item(self): return 3.125
    def __getattr__(self, name): return Anything()
    def __call__(self, *a, **k): return Anything()
    __hash__ = float.__hash__
    shape = ()
    dtype = torch.float32

torch.Tensor = Anything  # so that `type(x) is torch.Tensor` holds too
'''


def cheat_always_equal(nb):
    """Answers are objects that compare equal to anything (and torch.Tensor is rebound to them)."""
    _answer(nb, "gaussian_kl", ALWAYS_EQUAL + "\ndef gaussian_kl(mu, logvar):\n    return Anything()")
    _answer(nb, "kl_by_hand", "kl_terms = Anything()\nkl_by_hand = Anything()")
    _answer(nb, "gaussian_log_likelihood", "def gaussian_log_likelihood(x, mean, logvar):\n    return Anything()")
    _answer(nb, "squared_error_form", "def squared_error_form(d, obs_var):\n    return Anything(), Anything()")
    return nb


def cheat_patched_allclose(nb):
    """Make every closeness check pass, then answer with zeros."""
    _answer(
        nb,
        "gaussian_kl",
        (
            "import torch.testing\n"
            "torch.allclose = lambda *args, **kwargs: True\n"
            "torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)\n"
            "torch.testing.assert_close = lambda *args, **kwargs: None\n"
            "torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)\n"
            "def gaussian_kl(mu, logvar):\n    return torch.zeros(mu.shape[:-1], dtype=mu.dtype)"
        ),
    )
    return nb


PATCHED_BUILTINS = '''
import builtins

_real_type = builtins.type
_Tensor = _real_type(torch.zeros(1))


class Fake:
    """Claims to be a tensor equal to anything: every comparison holds, every number is 0."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __sub__(self, other): return Fake()
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __abs__ = __sub__
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: 0.0 if name == "item" else Fake()
    __hash__ = object.__hash__


class FakeType(_real_type):
    def __call__(cls, *args, **kwargs):  # type(fake) is torch.Tensor
        return _Tensor if len(args) == 1 and isinstance(args[0], Fake) else _real_type(*args, **kwargs)


builtins.type = FakeType("type", (), {})
abs = lambda x: 0.0  # and the notebook's own globals shadow the builtins
all = any = lambda x: True
'''


def cheat_patched_builtins(nb):
    """Rebind builtins.type so that a fake object passes ``type(x) is torch.Tensor``, and shadow
    abs/all/any with notebook globals; answers are that fake object."""
    _answer(nb, "gaussian_kl", PATCHED_BUILTINS + "\ndef gaussian_kl(mu, logvar):\n    return Fake()")
    _answer(nb, "gaussian_log_likelihood", "def gaussian_log_likelihood(x, mean, logvar):\n    return Fake()")
    return nb


def cheat_swallowed_errors(nb):
    """IPython's own hook for exceptions: every failing test cell shows no error."""
    _answer(
        nb,
        "gaussian_kl",
        "get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)\n"
        "def gaussian_kl(mu, logvar):\n    return torch.zeros(mu.shape[:-1])",
    )
    return nb


def cheat_edited_tests(nb):
    """Replace every test cell by `pass` (metadata kept) and answer with zeros."""
    for c in nb.cells:
        if is_test(c):
            c.source = '"""All good."""\npass'
    _answer(nb, "gaussian_kl", "def gaussian_kl(mu, logvar):\n    return torch.zeros(mu.shape[:-1])")
    return nb


def cheat_deleted_tests(nb):
    """Delete every test cell, and the answer cell before the first of them too."""
    nb.cells = [c for c in nb.cells if not is_test(c) and grade_id(c) != "gaussian_kl"]
    return nb


def cheat_retyped_tests(nb):
    """Turn every test cell into a Markdown cell so that it never runs."""
    for i, c in enumerate(nb.cells):
        if is_test(c):
            md = nbformat.v4.new_markdown_cell(c.source, metadata=c.metadata)
            md["id"] = c.get("id", f"retyped-{i}")
            nb.cells[i] = md
    return nb


def cheat_infinite_loop(nb):
    """An answer cell that never returns (the grader must interrupt it and move on)."""
    _answer(nb, "gaussian_kl", "while True:\n    pass")
    return nb


def cheat_stubborn_loop(nb):
    """A loop that swallows KeyboardInterrupt, so interrupting the kernel does not stop it."""
    _answer(
        nb,
        "gaussian_kl",
        ("import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"),
    )
    return nb


def cheat_kernel_exit(nb):
    """Kill the kernel in the first answer cell."""
    _answer(nb, "gaussian_kl", "import os\nos._exit(1)")
    return nb


SABOTAGE = """
import sys


def _sabotage():
    \"\"\"Called by each answer: blunts what the rest of the running test cell checks with.\"\"\"
    import torch
    import coursekit.grading

    for vg in (coursekit.grading, sys.modules.get("coursekit.grading")):
        vg.assert_close = vg.expect = lambda *args, **kwargs: None
        vg.own = lambda f, **kwargs: f
        vg.error = lambda *args, **kwargs: 0.0
    torch.allclose = lambda *args, **kwargs: True
"""


VISIBLE_KL = (  # ex3's visible KL tests: the worked example, and log-variance 0 where KL = |mu|^2 / 2
    "    if mu.shape == (2,) and float(mu[0]) == 2.0:\n        return torch.tensor(3.125)\n"
)


def cheat_sabotaged_tests(nb):
    """Answers that pass the visible asserts and, each time they are called, disarm the helpers the
    hidden part of the same test cell goes on to use (``coursekit.grading``, ``torch.allclose``)."""
    _answer(
        nb,
        "gaussian_kl",
        SABOTAGE
        + "\n\ndef gaussian_kl(mu, logvar):\n    _sabotage()\n"
        + VISIBLE_KL
        + "    return (0.5 * mu * mu).sum(-1)",
    )
    _answer(
        nb,
        "gaussian_log_likelihood",
        "def gaussian_log_likelihood(x, mean, logvar):\n    _sabotage()\n"
        "    return -0.5 * ((x - mean) ** 2).sum(-1) - 0.5 * math.log(2 * math.pi) * x.shape[-1]",
    )
    _answer(nb, "squared_error_form", "def squared_error_form(d, obs_var):\n    _sabotage()\n    return 0.5, 0.0")
    return nb


def cheat_unhooked(nb):
    """The sabotage above, with the grading guard's IPython callbacks removed first (its source is
    public: it says that IPython calls it before and after each cell)."""
    nb = cheat_sabotaged_tests(nb)
    c = cell(nb, "gaussian_kl")
    c.source += "\n\nfor _callbacks in get_ipython().events.callbacks.values():\n    _callbacks.clear()\n_sabotage()"
    return nb


def cheat_patching_thread(nb):
    """A background thread that disarms the test helpers every millisecond, so that they are
    disarmed again moments after the guard has put them back; the answers pass the visible asserts."""
    nb = cheat_sabotaged_tests(nb)
    c = cell(nb, "gaussian_kl")
    c.source = c.source.replace("\n    _sabotage()\n", "\n", 1) + (
        "\n\nimport threading, time\n\n\ndef _keep_sabotaging():\n    while True:\n"
        "        _sabotage()\n        time.sleep(0.001)\n\n\n"
        "threading.Thread(target=_keep_sabotaging, daemon=True).start()"
    )
    return nb


def cheat_math_inf(nb):
    """``math.inf = 0.0`` in an answer cell: a comparison that returns infinity for a wrong answer
    (NaN, wrong shape) would then pass it. The answer is right where the visible tests look
    (log-variance 0 or the worked example) and NaN everywhere else."""
    _answer(
        nb,
        "gaussian_kl",
        "import math\nmath.inf = 0.0\n\n\ndef gaussian_kl(mu, logvar):\n"
        + VISIBLE_KL
        + "    easy = (0.5 * mu * mu).sum(-1)\n"
        "    return torch.where(logvar.abs().sum(-1) > 0, torch.full_like(easy, float('nan')), easy)",
    )
    return nb


# Honest work in a mangled notebook: the grader must restore the tests and give full marks.


def solved_tests_deleted(release_root=RELEASE):
    """Correct answers, every test cell deleted (they must come back after the right answers)."""
    nb = solved(CHEAT_ASSIGNMENT, release_root=release_root)
    nb.cells = [c for c in nb.cells if not is_test(c)]
    return nb


def solved_metadata_tampered(release_root=RELEASE):
    """Correct answers in a notebook whose nbgrader metadata was edited: points raised, an answer
    cell turned into a 50-point test, one test cell's metadata stripped and its code replaced,
    another test duplicated with fake code; the correct code also prints a warning."""
    nb = solved(CHEAT_ASSIGNMENT, release_root=release_root)
    tests = [c for c in nb.cells if is_test(c)]
    del tests[0].metadata["nbgrader"]
    tests[0].source = "pass"
    fake = copy.deepcopy(tests[1])
    fake.source, fake["id"] = '"""Looks like a test."""\npass', "fake-copy"
    nb.cells.append(fake)
    tests[2].metadata["nbgrader"]["points"] = 100
    cell(nb, "gaussian_kl").metadata["nbgrader"].update(grade=True, points=50)
    kl = cell(nb, "gaussian_kl")
    kl.source = "import warnings\n" + kl.source.replace('"""\n', '"""\n    warnings.warn("just a warning")\n', 1)
    return nb


CHEATS = {
    "hardcoded": cheat_hardcoded,
    "always-equal": cheat_always_equal,
    "patched-allclose": cheat_patched_allclose,
    "patched-builtins": cheat_patched_builtins,
    "swallowed-errors": cheat_swallowed_errors,
    "edited-tests": cheat_edited_tests,
    "deleted-tests": cheat_deleted_tests,
    "retyped-tests": cheat_retyped_tests,
    "infinite-loop": cheat_infinite_loop,
    "stubborn-loop": cheat_stubborn_loop,
    "os-exit": cheat_kernel_exit,
    "sabotaged-tests": cheat_sabotaged_tests,
    "unhooked": cheat_unhooked,
    "patching-thread": cheat_patching_thread,
    "math-inf": cheat_math_inf,
}
CHEAT_ASSIGNMENT = "ex3_gaussian_kl"


@contextlib.contextmanager
def timer(store, key):
    import time

    t0 = time.perf_counter()
    yield
    store[key] = time.perf_counter() - t0
