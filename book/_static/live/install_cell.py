# Installs the course's package where it is missing (Colab, Binder, a
# fresh Python); a no-op where vaecourse is installed. VAECOURSE_PIP_SOURCE
# (a wheel, a folder, a URL) overrides where it comes from.
import importlib.util

if importlib.util.find_spec("vaecourse") is None:
    import os
    import subprocess
    import sys

    default = None
    source = os.environ.get("VAECOURSE_PIP_SOURCE") or default
    if not source:
        raise ImportError(
            "vaecourse is not installed: pip install a clone of the course "
            "(pip install .) or its wheel, or set VAECOURSE_PIP_SOURCE"
        )
    pip = [sys.executable, "-m", "pip", "install", "--quiet", source]
    subprocess.check_call(pip)
    importlib.invalidate_caches()
