"""Run every graded notebook's kernel inside a bubblewrap (``bwrap``) sandbox.

``nbgrader_config.py`` makes ``SandboxedKernelManager`` the kernel manager of nbgrader's ``Execute``
preprocessor (and so of ``ResilientExecute``): every kernel that ``nbgrader autograde`` (or
``nbgrader validate``) starts from this folder runs as

    bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --clearenv
          --ro-bind <each path of the Python environment, the course package, Sandbox.read_only_paths>
          --proc /proc --dev /dev --tmpfs /tmp (Sandbox.disk_limit) --tmpfs /dev/shm (same)
          --remount-ro / --remount-ro /dev ...
      prlimit --as=<memory_limit> --nproc=<process_limit> --fsize=<disk_limit> --core=0 --
      sh -c 'copy the submission folder to ~/<assignment>; cd there; exec python -m ipykernel_launcher ...'

What the kernel sees: a root made of read-only bind mounts of the interpreter, its packages (less
``Sandbox.hidden_packages``: the debugger) and the course's packages, ``vaecourse`` and
``coursekit`` (nothing else of the host: no course directory, no ``solutions/``, no gradebook, no
``submitted/``/``autograded/``/``feedback/``, no exchange, no ``.git``, no home directories), a
private ``/tmp`` holding ``$HOME`` and a writable copy of its own submission folder, fresh ``/proc``
(its own processes only) and ``/dev``. It has its own network namespace (only its own loopback:
nothing on the host, 127.0.0.1 included, is reachable) and its own PID, IPC and UTS namespaces;
nested user namespaces are disabled. When the grader runs as root, the sandbox runs as an
unprivileged user (``Sandbox.unprivileged_uid``), so that root's exemption from the process limit
and root's ownership of host files (``/etc/shadow``) do not carry over.

The grader talks to the kernel over ZeroMQ's ``ipc`` transport: the kernel binds its sockets in
its private ``/tmp``; the grader connects to them through ``/proc/<sandbox pid>/root``. So no host
folder is writable from inside. Host paths are passed to ``bwrap`` as open file descriptors
(``--ro-bind-fd``), so an unprivileged sandbox user can mount trees it could not walk to (a
Python installed under ``/root``).

If the sandbox cannot start (``bwrap`` missing, user namespaces disabled) nothing is graded: the
error says how to install or enable it. Opting out takes
``c.Sandbox.i_understand_submissions_run_unsandboxed = True``.
"""

import importlib.util
import json
import os
import re
import secrets
import select
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from jupyter_client.localinterfaces import localhost
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, List, TraitError, Unicode, Union, default, validate
from traitlets.config import LoggingConfigurable

__all__ = ["Sandbox", "SandboxError", "SandboxedKernelManager", "parse_size", "format_size"]

INSIDE_TMP = "/tmp"
INSIDE_HOME = "/tmp/home"
KERNEL_DIR = "/tmp/.kernel"  # the kernel's sockets, inside the sandbox (made by the sandbox's user)
KERNEL_FILE = "/run/kernel/connection.json"  # its connection file (read-only)
SUBMISSION = "/run/submission"  # the submission folder, read-only; the kernel works in a copy in $HOME
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
UID_BASE, UID_SPAN = 3_000_000_000, 1_000_000_000  # ids no account uses (useradd stops at 60000)
ENV_PASSED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LANG", "LC_ALL", "TZ")

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)

INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install "
    "bubblewrap`), or point c.Sandbox.bwrap at it."
)
USERNS_HINT = (
    "bwrap needs unprivileged user namespaces: enable them with `sudo sysctl -w "
    "kernel.unprivileged_userns_clone=1` (Debian) or `sudo sysctl -w user.max_user_namespaces=15000`; "
    "on Ubuntu 24.04 and later AppArmor restricts them (`sudo sysctl -w "
    "kernel.apparmor_restrict_unprivileged_userns=0`, or install Ubuntu's bwrap AppArmor profile); "
    "inside a container, run it with user namespaces allowed (e.g. podman, or docker --security-opt "
    "seccomp=unconfined)."
)
OPT_OUT = (
    "Submissions are not graded unsandboxed unless you say so: "
    "c.Sandbox.i_understand_submissions_run_unsandboxed = True in nbgrader_config.py "
    "(any student's code can then read the solutions and the gradebook, and change grades)."
)


class SandboxError(RuntimeError):
    """The sandbox cannot start; the message says why and how to fix it."""


def parse_size(value, option):
    """Bytes in ``value`` (an int, or a string such as ``"4GiB"``, ``"512 MiB"``, ``"1.5G"``).

    ``option`` names the setting in the error, e.g. ``Sandbox.memory_limit``.
    """
    if isinstance(value, bool):
        raise TraitError(f"{option} must be a size such as '4GiB' or a number of bytes, not {value!r}")
    if isinstance(value, (int, float)):
        n = value
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise TraitError(f"{option} must be a size such as '4GiB', '512MiB' or a number of bytes, not {value!r}")
        n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if n != n or n < 1 or n == float("inf"):
        raise TraitError(f"{option} must be a positive size, not {value!r}")
    return int(n)


def format_size(n):
    """``4294967296`` -> ``'4 GiB'``; ``1536 * 1024**2`` -> ``'1.5 GiB'``."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"


def _size_trait(default_value, help):
    return Union([Integer(), Unicode()], default_value=default_value, help=help).tag(config=True)


class Sandbox(LoggingConfigurable):
    """Where and within which limits a submission's kernel runs (``c.Sandbox.*`` in nbgrader_config.py)."""

    i_understand_submissions_run_unsandboxed = Bool(
        False,
        help="Run kernels without the sandbox. Only for trusted notebooks: a submission can then read "
        "the solutions and the gradebook, change grades and other students' files, use the network.",
    ).tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap executable (a name looked up on PATH, or a path).").tag(config=True)
    memory_limit = _size_trait("4GiB", "Address space of each process of a kernel (RLIMIT_AS), e.g. '4GiB'.")
    process_limit = Integer(64, help="Processes and threads a kernel may run at once (RLIMIT_NPROC).").tag(config=True)
    disk_limit = _size_trait(
        "1GiB", "Size of the kernel's private /tmp (its $HOME and working copy) and of its /dev/shm; largest file."
    )
    output_limit = _size_trait(
        "2MiB", "Output one cell may produce; a cell that goes past it fails (the rest of its output is dropped)."
    )
    notebook_output_limit = _size_trait(
        "20MiB", "Output all the cells of a notebook may produce (a notebook can have many cells); the same."
    )
    open_files_limit = Integer(1024, help="Open files per process (RLIMIT_NOFILE).").tag(config=True)
    packages = List(
        Unicode(),
        ["vaecourse", "coursekit"],
        help="Packages the kernel may import from outside the Python environment.",
    ).tag(config=True)
    read_only_paths = List(
        Unicode(), help="Further host paths the kernel sees read-only (a shared test-helper module, data)."
    ).tag(config=True)
    hidden_paths = List(
        Unicode(),
        help="Host paths hidden even if they lie inside a path the kernel sees (the course directory, "
        "solutions, gradebook, exchange and the repository's .git are always hidden).",
    ).tag(config=True)
    hidden_packages = List(
        Unicode(),
        ["debugpy"],
        help="Packages of the Python environment that a graded kernel does not see. ipykernel imports its "
        "debugger, debugpy, at every start when it can (about 0.4 s of CPU); a graded kernel is never debugged.",
    ).tag(config=True)
    pass_env = List(Unicode(), list(ENV_PASSED), help="Environment variables passed into the sandbox.").tag(config=True)
    unprivileged_uid = Integer(
        0,
        help="User (and group) id the sandbox runs as when the grader is root; 0: a fresh, unused one per "
        f"sandbox (from {UID_BASE} up).",
    ).tag(config=True)

    @validate("memory_limit", "disk_limit", "output_limit", "notebook_output_limit")
    def _valid_size(self, proposal):
        parse_size(proposal["value"], f"Sandbox.{proposal['trait'].name}")
        return proposal["value"]

    @validate("process_limit", "open_files_limit")
    def _valid_count(self, proposal):
        value = proposal["value"]
        if value < 1:
            raise TraitError(f"Sandbox.{proposal['trait'].name} must be at least 1, not {value!r}")
        return value

    @validate("unprivileged_uid")
    def _valid_uid(self, proposal):
        if not 0 <= proposal["value"] < 2**32 - 1:
            raise TraitError(
                f"Sandbox.unprivileged_uid must be a user id (0 for a fresh one), not {proposal['value']!r}"
            )
        return proposal["value"]

    @validate("read_only_paths")
    def _valid_paths(self, proposal):
        for path in proposal["value"]:
            if not os.path.isabs(path) or not os.path.exists(path):
                raise TraitError(f"Sandbox.read_only_paths: {path!r} is not an existing absolute path")
        return proposal["value"]

    @property
    def memory_bytes(self):
        return parse_size(self.memory_limit, "Sandbox.memory_limit")

    @property
    def disk_bytes(self):
        return parse_size(self.disk_limit, "Sandbox.disk_limit")

    @property
    def output_bytes(self):
        return parse_size(self.output_limit, "Sandbox.output_limit")

    @property
    def notebook_output_bytes(self):
        return parse_size(self.notebook_output_limit, "Sandbox.notebook_output_limit")

    @property
    def enabled(self):
        return not self.i_understand_submissions_run_unsandboxed

    # ------------------------------------------------------------------ what the kernel sees

    def visible_paths(self, python=sys.executable):
        """The host trees bound read-only into the sandbox, each at its own path (none inside another)."""
        paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
        paths += [sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")]
        paths += [os.path.dirname(os.path.realpath(python))]
        for name in self.packages:
            where = _package_paths(name)
            if where is None:
                raise SandboxError(f"Sandbox.packages: {name!r} is not importable here")
            paths += where
        paths += self.read_only_paths
        trees = {p for p in SYSTEM_TREES if os.path.isdir(p) and not os.path.islink(p)}
        trees |= {os.path.realpath(p) for p in paths if p and os.path.exists(p)}
        return sorted(p for p in trees if not any(_inside(p, q) for q in trees if q != p))

    def hidden_package_paths(self):
        """Where the packages of ``hidden_packages`` lie (those not installed are skipped)."""
        return [p for name in self.hidden_packages for p in _package_paths(name) or []]

    def argv(self, command, workdir=None, hidden=(), fds=None, extra=()):
        """The bwrap command line that runs ``command`` (a list) in the sandbox.

        ``workdir``: a host folder copied (inside the sandbox) to ``~/<its name>``, where the command
        starts. ``hidden``: host paths to hide where they lie inside a visible tree. ``fds``: a list
        that receives the file descriptors to pass (the caller closes them); without it host paths
        are named directly. ``extra``: bwrap options applied once the private /tmp exists.
        """
        ops, late = [], []  # late: what lies inside the private /tmp or /dev, made after them

        def place(path):
            return late if any(path == t or _inside(path, t) for t in (INSIDE_TMP, "/dev")) else ops

        def bind(path, dest=None):
            dest = dest or path
            if fds is None:
                place(dest).extend(["--ro-bind", path, dest])
            else:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                fds.append(fd)
                place(dest).extend(["--ro-bind-fd", str(fd), dest])

        for link in SYSTEM_TREES:  # /lib -> usr/lib on merged-/usr systems: the same link inside
            if os.path.islink(link):
                ops.extend(["--symlink", os.readlink(link), link])
        visible = self.visible_paths(command[0] if command else sys.executable)
        parents = {a for p in visible + [SUBMISSION] for a in _ancestors(p)} - set(visible)
        for folder in sorted(parents - {INSIDE_TMP, "/dev"}):  # bwrap (as root) would make them 0700
            place(folder).extend(["--perms", "0755", "--dir", folder])
        for path in visible:
            bind(path)
        for path in sorted({os.path.realpath(h) for h in hidden if h and os.path.lexists(h)}):
            if not any(_inside(path, q) or path == q for q in visible):
                continue  # not in the sandbox in the first place
            if os.path.isdir(path):
                place(path).extend(["--size", "4096", "--tmpfs", path, "--remount-ro", path])
            else:
                place(path).extend(["--ro-bind", "/dev/null", path])
        if workdir:
            bind(workdir, SUBMISSION)
            work = INSIDE_HOME + "/" + os.path.basename(os.path.normpath(workdir))
            # a folder too big for the disk limit is not copied (the notebook itself comes from the grader)
            copy = f"cp -R {SUBMISSION}/. {work}/ 2>/dev/null || {{ rm -rf {work}; mkdir -p {work}; }}; "
        else:
            work, copy = INSIDE_HOME, ""
        setup = f'mkdir -p {work} {KERNEL_DIR} && chmod 700 {KERNEL_DIR} && {copy}cd {work} && exec "$@"'
        disk = str(self.disk_bytes)
        ops += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", disk, "--tmpfs", "/dev/shm"]
        ops += ["--perms", "1777", "--size", disk, "--tmpfs", INSIDE_TMP, *late, *extra]
        ops += ["--remount-ro", "/dev", "--remount-ro", "/"]
        bindir = os.path.dirname(os.path.abspath(command[0] if command else sys.executable))
        env = {"HOME": INSIDE_HOME, "TMPDIR": INSIDE_TMP, "USER": "student", "LOGNAME": "student"}
        # Python's safe-path mode: neither Python nor IPython puts the working folder (the submission's
        # copy) on sys.path, so a file handed in with the notebook (numpy.py, say) cannot stand in for
        # a module that the kernel or the test guard imports before any cell runs
        env["PYTHONSAFEPATH"] = "1"
        env["PATH"] = os.pathsep.join(dict.fromkeys([bindir, "/usr/local/bin", "/usr/bin", "/bin"]))
        env.update({k: os.environ[k] for k in self.pass_env if k in os.environ})
        for name, value in env.items():
            ops += ["--setenv", name, value]
        limits = [
            "prlimit",
            f"--as={self.memory_bytes}",
            f"--nproc={self.process_limit}",
            f"--fsize={self.disk_bytes}",
            f"--nofile={self.open_files_limit}",
            "--core=0",
            "--",
        ]
        namespaces = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        namespaces += ["--die-with-parent", "--clearenv", "--hostname", "sandbox"]
        if os.geteuid() == 0:
            # as root: no user namespace (bwrap's would map the sandbox to root, exempt from the process
            # limit and owner of every root-owned file); the sandbox drops to a user of its own instead,
            # with no capabilities, an empty bounding set and no_new_privs
            uid = str(self._uid())
            user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
            user += ["--bounding-set=-all", "--no-new-privs", "--"]
        else:  # an unprivileged user namespace, in which no further one may be made
            namespaces += ["--unshare-user", "--disable-userns"]
            user = []
        return [self.bwrap_path(), *namespaces, *ops, "--", *user, *limits, "/bin/sh", "-c", setup, "sh", *command]

    def _uid(self):
        """The user a sandbox started by root runs as: a fresh one for each sandbox (the process limit
        counts per user, and one sandbox's processes cannot signal another's)."""
        if self.unprivileged_uid:
            return self.unprivileged_uid
        return UID_BASE + secrets.randbelow(UID_SPAN)

    def bwrap_path(self):
        found = shutil.which(self.bwrap)
        if not found:
            raise SandboxError(f"The sandbox tool {self.bwrap!r} (bubblewrap) was not found. {INSTALL_HINT} {OPT_OUT}")
        return found

    def run(self, command, workdir=None, hidden=(), timeout=60, **kw):
        """``subprocess.run`` of ``command`` in the sandbox (for checks and tests)."""
        fds = []
        try:
            argv = self.argv(command, workdir, hidden, fds)
            return subprocess.run(argv, pass_fds=fds, timeout=timeout, capture_output=True, text=True, **kw)
        finally:
            for fd in fds:
                os.close(fd)

    def check(self):
        """Start a sandbox once; raise SandboxError saying how to fix it if that fails."""
        if not self.enabled:
            return
        key = (self.bwrap, os.geteuid())
        if key in _CHECKED:
            return
        python = sys.executable
        try:
            proc = self.run([python, "-c", "print('sandbox ok')"], timeout=120)
        except SandboxError:
            raise
        except (OSError, subprocess.SubprocessError) as err:
            raise SandboxError(f"The sandbox could not be started ({err}). {USERNS_HINT} {OPT_OUT}") from err
        if proc.returncode != 0 or "sandbox ok" not in proc.stdout:
            why = (proc.stderr or proc.stdout).strip()[-500:] or f"exit status {proc.returncode}"
            raise SandboxError(f"The sandbox could not be started: {why}. {USERNS_HINT} {OPT_OUT}")
        _CHECKED.add(key)


def _ancestors(path):
    parts = os.path.normpath(path).split("/")[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _inside(path, tree):
    return path.startswith(tree.rstrip("/") + "/")


_CHECKED = set()
_WARNED = []


def preflight(config, log):
    """Before ``nbgrader autograde`` touches a submission: the sandbox's settings are valid and it starts.

    Returns None, or the message to stop with (a bad setting, bwrap missing, no user namespaces).
    Only where the course's kernels are sandboxed (``c.Execute.kernel_manager_class``).
    """
    manager = (config or {}).get("Execute", {}).get("kernel_manager_class")
    named = isinstance(manager, str) and manager.endswith("SandboxedKernelManager")
    if not (named or isinstance(manager, type) and issubclass(manager, SandboxedKernelManager)):
        return None
    try:
        sandbox = Sandbox(config=config, log=log)
        sandbox.visible_paths()
        sandbox.check()
    except (TraitError, SandboxError) as err:
        return str(err)
    if not sandbox.enabled:
        log.warning(
            "The sandbox is OFF (c.Sandbox.i_understand_submissions_run_unsandboxed = True): submissions "
            "run with your permissions and can read the solutions and change the gradebook"
        )
    return None


def _package_paths(name):
    """The folders (or the file) a package is imported from, or None where it is not importable."""
    spec = importlib.util.find_spec(name)
    return None if spec is None else list(spec.submodule_search_locations or []) or [spec.origin]


def course_hidden_paths(config):
    """Paths of the course that a kernel must never see, from nbgrader's config (and the .git above)."""
    cd = config.get("CourseDirectory", {}) if config else {}
    root = str(cd.get("root", "") or os.getcwd())
    paths = [root]
    for key in ("source_directory", "submitted_directory", "autograded_directory", "feedback_directory"):
        value = cd.get(key)
        if isinstance(value, str) and value:
            paths.append(os.path.normpath(os.path.join(root, value)))
    db = cd.get("db_url", "")
    if isinstance(db, str) and db.startswith("sqlite:///"):
        paths.append(db[len("sqlite:///") :].split("?")[0])
    ex = config.get("Exchange", {}).get("root") if config else None
    if isinstance(ex, str) and ex:
        paths.append(ex)
    folder = os.path.abspath(root)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            paths.append(os.path.join(folder, ".git"))
            break
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return paths


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in the ``Sandbox`` (``c.Execute.kernel_manager_class``).

    The kernel's working directory (nbgrader's copy of the submission in ``autograded/``) is
    copied into the sandbox; the kernel binds its ZeroMQ sockets (``ipc`` transport) in its own
    ``/tmp``, which the grader reaches through ``/proc/<pid>/root``.
    """

    @default("transport")
    def _transport_default(self):
        return "ipc"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sandbox = Sandbox(parent=self)
        if not self.sandbox.enabled:  # as a plain kernel manager
            self.transport, self.ip = "tcp", localhost()
        self._private = None
        self._workdir = None

    async def _async_pre_start_kernel(self, **kw):
        if not self.sandbox.enabled:
            if not _WARNED:
                _WARNED.append(True)
                self.log.warning(
                    "Sandbox is off (c.Sandbox.i_understand_submissions_run_unsandboxed): kernels run unsandboxed"
                )
            return await super()._async_pre_start_kernel(**kw)
        self.sandbox.check()
        # a signal from the grader does not reach the kernel through bwrap's PID namespace; an
        # interrupt_request on the control channel does (ipykernel then signals its own process group)
        self.kernel_spec.interrupt_mode = "message"
        self.transport = "ipc"
        self._workdir = os.path.abspath(kw.get("cwd") or os.getcwd())
        self._private = tempfile.mkdtemp(prefix="vaecourse-kernel-")
        self.connection_file = os.path.join(self._private, "connection.json")
        self.ip = KERNEL_DIR + "/k"  # where the kernel binds; the grader connects via /proc/<pid>/root
        kw["cwd"] = "/"  # where bwrap starts (as the sandbox user); the sandbox goes to its copy itself
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if not self.sandbox.enabled:
            return cmd
        return [KERNEL_FILE if part == self.connection_file else part for part in cmd]

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if not self.sandbox.enabled:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        fds = []
        data_r, data_w = os.pipe()
        info_r, info_w = os.pipe()
        try:
            with open(self.connection_file, "rb") as f:
                os.write(data_w, f.read())
            os.close(data_w)
            hidden = course_hidden_paths(self.config) + [self._private] + self.sandbox.hidden_paths
            hidden += self.sandbox.hidden_package_paths()
            extra = [*(["--perms", "0755", "--dir", d] for d in _ancestors(KERNEL_FILE))]
            extra = [x for op in extra for x in op] + ["--perms", "0444", "--ro-bind-data", str(data_r), KERNEL_FILE]
            argv = self.sandbox.argv(kernel_cmd, self._workdir, hidden, fds, extra)
            argv[1:1] = ["--info-fd", str(info_w)]
            kw.update(pass_fds=fds + [data_r, info_w])
            kw.setdefault("stdout", subprocess.DEVNULL)  # ipykernel's banner; errors go to stderr
            await super()._async_launch_kernel(argv, **kw)
            os.close(info_w)
            info_w = None
            pid = self._sandbox_pid(info_r)
        finally:
            for fd in fds + [data_r, info_r] + ([info_w] if info_w is not None else []):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.ip = f"/proc/{pid}/root{KERNEL_DIR}/k"

    def _sandbox_pid(self, fd):
        """The sandbox's first process, from bwrap's --info-fd (written once the namespaces exist)."""
        data = b""
        deadline = 60.0
        while b"}" not in data:
            ready, _, _ = select.select([fd], [], [], deadline)
            if not ready:
                raise RuntimeError("the sandbox did not report its process id within 60 s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("Kernel died before replying to kernel_info (the sandbox did not start)")
            data += chunk
        return int(json.loads(data[: data.index(b"}") + 1])["child-pid"])

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if self._private and not restart:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None
