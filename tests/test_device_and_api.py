"""Device choice in one place, seeding, and the flat public API."""

import importlib
import subprocess
import sys

import pytest
import torch

import vaecourse as vc


def test_get_device_prefers_argument_then_env(monkeypatch):
    monkeypatch.delenv("VAECOURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert vc.get_device().type == "cuda"
    else:
        assert vc.get_device().type in ("cpu", "mps")
    monkeypatch.setenv("VAECOURSE_DEVICE", "cpu")
    assert vc.get_device() == torch.device("cpu")
    assert vc.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("VAECOURSE_DEVICE", "tpu9")
    with pytest.raises(ValueError, match="^VAECOURSE_DEVICE: 'tpu9' is not a device name"):
        vc.get_device()
    with pytest.raises(ValueError, match="^prefer: 'tpu9' is not a device name"):
        vc.get_device("tpu9")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_asking_for_missing_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        vc.get_device("cuda")


def test_set_seed_makes_torch_and_numpy_reproducible():
    import numpy as np

    vc.set_seed(123)
    a = (torch.randn(3), np.random.rand(3))
    vc.set_seed(123)
    b = (torch.randn(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all()
    with pytest.raises(ValueError, match="seed must be an int"):
        vc.set_seed(1.5)
    with pytest.raises(ValueError, match=r"seed must be an int in \[-2\*\*63, 2\*\*64\), got 1180591620717411303424"):
        vc.set_seed(2**70)  # torch's own message: "Overflow when unpacking long long"
    assert vc.set_seed(2**64 - 1) == 2**64 - 1 and vc.set_seed(-(2**63)) == -(2**63)


def test_public_api_is_flat_and_complete():
    for name in vc.__all__:
        assert getattr(vc, name) is not None, name
    for name in (
        "gaussian_kl",
        "reparameterize",
        "iwae_bound",
        "VAE",
        "LinearGaussianVAE",
        "train",
        "active_units",
        "load_mnist",
        "load_digits",
        "plot_samples",
        "latent_explorer",
    ):
        assert name in vc.__all__


def test_import_does_not_load_matplotlib_or_ipywidgets():
    code = "import sys, vaecourse; print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_modules_open_with_a_docstring_and_use_only_public_torch():
    import pathlib
    import re

    import coursekit

    for package in (vc, coursekit):
        for path in pathlib.Path(package.__file__).parent.glob("*.py"):
            name = package.__name__ if path.stem == "__init__" else f"{package.__name__}.{path.stem}"
            mod = importlib.import_module(name)
            assert mod.__doc__ and len(mod.__doc__.strip()) > 20, path.name
            private = re.findall(r"torch\._[a-zA-Z]\w*|torch\.ops\.\w+", path.read_text())
            assert not private, (path.name, private)  # no torch._C, torch._fused_adam_, torch.ops.aten
