"""The grading sandbox (autograder/vaecourse_sandbox.py) and the grader's pieces around it, one
kernel or process at a time: what a sandboxed process can see and reach, its limits and how a
failing cell names them, the refusal to run without bubblewrap, bad settings, the feedback
filter, the LMS export and grade.py's checks of the submitted/ folder. The graded round trip with
the attack submissions is in test_autograder.py."""

import base64
import os
import socket
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from traitlets import TraitError
from traitlets.config import Config

AUTOGRADER = Path(__file__).resolve().parents[1] / "autograder"
REPO = AUTOGRADER.parent
sys.path.insert(0, str(AUTOGRADER))
import grade  # noqa: E402
from vaecourse_export import rows  # noqa: E402
from vaecourse_grader import FeedbackSanitizer, ResilientExecute  # noqa: E402
from vaecourse_sandbox import Sandbox, SandboxedKernelManager, SandboxError, format_size, parse_size  # noqa: E402

PY = sys.executable


def _run(code, **limits):
    proc = Sandbox(**limits).run([PY, "-c", code], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "value, want", [("4GiB", 4 * 1024**3), ("512 MiB", 512 * 1024**2), ("1.5G", int(1.5 * 1024**3)), (4096, 4096)]
)
def test_sizes(value, want):
    assert parse_size(value, "Sandbox.memory_limit") == want


def test_size_formatting():
    assert format_size(4 * 1024**3) == "4 GiB" and format_size(1536 * 1024**2) == "1.5 GiB"
    assert format_size(2 * 1024**2) == "2 MiB" and format_size(100) == "100 bytes"


@pytest.mark.parametrize(
    "option, value",
    [
        ("memory_limit", "4 gigs"),
        ("memory_limit", 0),
        ("memory_limit", "-1GiB"),
        ("disk_limit", "lots"),
        ("output_limit", True),
        ("process_limit", 0),
        ("open_files_limit", -5),
        ("read_only_paths", ["relative/path"]),
        ("read_only_paths", ["/no/such/folder"]),
    ],
)
def test_a_nonsense_setting_is_an_error_that_names_it(option, value):
    with pytest.raises(TraitError, match=f"Sandbox.{option}"):
        Sandbox(**{option: value})
    config = Config({"Sandbox": {option: value}})  # from nbgrader_config.py: the same, when it is read
    with pytest.raises(TraitError, match=f"Sandbox.{option}"):
        Sandbox(config=config)


def test_a_missing_bwrap_stops_with_how_to_install_it():
    with pytest.raises(SandboxError) as err:
        Sandbox(bwrap="/nonexistent/bwrap").check()
    message = str(err.value)
    assert "apt-get install bubblewrap" in message and "c.Sandbox.i_understand_submissions_run_unsandboxed" in message


def test_a_sandbox_that_cannot_start_stops_with_how_to_enable_it(tmp_path):
    fake = tmp_path / "bwrap"  # a bwrap that fails as it does without user namespaces
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxError) as err:
        Sandbox(bwrap=str(fake)).check()
    assert "No permissions to create new namespace" in str(err.value) and "user namespaces" in str(err.value)


# ----------------------------------------------------------------------------- what it sees


def test_the_sandbox_sees_the_python_environment_and_the_package_but_no_course_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    out = _run(
        "import os, vaecourse, sys\n"
        f"for p in {[str(REPO / 'solutions'), str(REPO / '.git'), str(AUTOGRADER), str(secret), '/root/.ssh']!r}:\n"
        "    print(p, os.path.exists(p))\n"
        f"print('repo', sorted(os.listdir({str(REPO)!r})))\n"
        "print('uid', os.getuid())\n"
        "try:\n    open('/etc/shadow').read(); print('shadow readable')\nexcept OSError: print('shadow hidden')\n"
        "for p in ('/', '/usr', '/etc', os.path.dirname(vaecourse.__file__)):\n"
        "    try:\n        open(os.path.join(p, 'x'), 'w'); print('wrote', p)\n    except OSError: pass\n"
        "open('/tmp/mine', 'w').write('ok'); print('tmp ok', os.environ['HOME'])\n"
    )
    for p in (REPO / "solutions", REPO / ".git", AUTOGRADER, secret):
        assert f"{p} False" in out
    assert "'solutions'" not in out and "'autograder'" not in out
    assert "wrote" not in out and "tmp ok /tmp/home" in out
    if os.geteuid() == 0:
        assert "uid 0" not in out and "shadow hidden" in out


def test_the_sandbox_reaches_no_network_not_even_the_hosts_loopback():
    received = []
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen()
    server.settimeout(20)
    port = server.getsockname()[1]

    def accept():
        try:
            conn, _ = server.accept()
            received.append(conn.recv(1000))
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    out = _run(
        "import socket\n"
        f"for host in ('127.0.0.1', 'localhost', {_host_address()!r}):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=3).sendall(b'leak'); print('sent', host)\n"
        "    except OSError as err:\n        print('blocked', host, type(err).__name__)\n"
    )
    server.close()
    thread.join(5)
    assert "sent" not in out and received == [], (out, received)


def _host_address():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.254.254.254", 1))  # no packet is sent: this only picks the outgoing interface
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def test_extra_read_only_paths_are_visible_and_read_only(tmp_path):
    helper = tmp_path / "helpers"
    helper.mkdir()
    (helper / "testhelpers.py").write_text("ANSWER = 42\n")
    out = _run(
        f"import sys; sys.path.insert(0, {str(helper)!r}); import testhelpers; print('helper', testhelpers.ANSWER)\n"
        f"try:\n    open({str(helper / 'x')!r}, 'w'); print('writable')\nexcept OSError: print('read-only')\n",
        read_only_paths=[str(helper)],
    )
    assert "helper 42" in out and "read-only" in out


# ----------------------------------------------------------------------------- limits, in a kernel


def _kernel_run(cells, config=None, timeout=20, folder=AUTOGRADER):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    ex = ResilientExecute(config=config or Config(), kernel_manager_class=SandboxedKernelManager, timeout=timeout)
    nb, _ = ex.preprocess(nb, {"metadata": {"path": str(folder)}})
    return [
        [(o.get("ename"), o.get("evalue")) if o["output_type"] == "error" else o.get("text", "") for o in c.outputs]
        for c in nb.cells
    ]


def test_a_graded_kernel_starts_without_the_debugger_unless_configured():
    """ipykernel imports debugpy at start-up where it can; the sandbox hides it (Sandbox.hidden_packages)."""
    cell = "import sys, ipykernel.debugger as d\nprint(d._is_debugpy_available, 'debugpy.server' in sys.modules)"
    assert _kernel_run([cell]) == [["False False\n"]]
    config = Config()
    config.Sandbox.hidden_packages = []
    assert _kernel_run([cell], config=config) == [["True True\n"]]


def test_a_module_handed_in_with_the_notebook_does_not_replace_the_real_one(tmp_path):
    """A numpy.py (or torch/) in the submission folder would run before the test guard takes its
    snapshot, when the guard imports numpy: the working folder is not on the kernel's sys.path."""
    folder = tmp_path / "ex3"
    folder.mkdir()
    (folder / "numpy.py").write_text("import coursekit.grading as vg\nvg.expect = lambda *a, **k: None\n")
    (folder / "torch").mkdir()
    (folder / "torch" / "__init__.py").write_text("raise SystemExit('the fake torch ran')\n")
    out = _kernel_run(
        [
            "import os, sys, numpy, torch, coursekit.grading as vg\n"
            "print(os.path.exists('numpy.py'), '' in sys.path, os.getcwd() in sys.path)\n"
            "print(numpy.__file__.endswith('site-packages/numpy/__init__.py'), hasattr(torch, 'Tensor'))\n"
            "print(vg.expect.__module__)",
        ],
        folder=folder,
    )
    assert out == [["True False False\nTrue True\ncoursekit.grading\n"]], out


def test_each_limit_fails_its_cell_with_a_message_naming_it_and_the_rest_runs(tmp_path):
    folder = tmp_path / "ex1"
    folder.mkdir()
    (folder / "data.txt").write_text("handed in with the notebook")
    config = Config(
        {"Sandbox": {"memory_limit": "1GiB", "process_limit": 24, "disk_limit": "16MiB", "output_limit": "64KiB"}}
    )
    out = _kernel_run(
        [
            "block = bytearray(2 * 1024**3)",
            "import subprocess\nkids = []\ntry:\n    for _ in range(100):\n"
            "        kids.append(subprocess.Popen(['sleep', '20']))\n"
            "finally:\n    for k in kids:\n        k.kill()\n        k.wait()",
            "open('big.bin', 'wb').write(b'x' * 32 * 1024**2)",
            "for _ in range(200):\n    print('y' * 1000)",
            "import os\nprint(6 * 7, os.getcwd(), open('data.txt').read())",
        ],
        config,
        folder=folder,
    )
    limits = [[e for e in cell if isinstance(e, tuple) and e[0] == "LimitReached"] for cell in out]
    assert limits[0] == [("LimitReached", "memory limit 1 GiB reached (Sandbox.memory_limit)")], out[0]
    assert limits[1] == [("LimitReached", "process limit 24 reached (Sandbox.process_limit)")], out[1]
    assert limits[2] == [("LimitReached", "disk limit 16 MiB reached (Sandbox.disk_limit)")], out[2]
    message = "output limit 64 KiB per cell reached (Sandbox.output_limit): the rest was dropped"
    assert limits[3] == [("LimitReached", message)], out[3]
    assert sum(len(t) for t in out[3] if isinstance(t, str)) <= 64 * 1024
    assert out[4] == ["42 /tmp/home/ex1 handed in with the notebook\n"], out[4]
    assert sorted(os.listdir(folder)) == ["data.txt"], "the sandbox wrote into the host folder"


def test_a_kernel_that_sends_unreadable_messages_fails_its_cell_and_the_rest_is_not_run():
    forge = (
        "import zmq\nk = get_ipython().kernel\n"
        "k.iopub_socket.send_multipart([b'x', b'<IDS|MSG>', b'forged', b'{}', b'{}', b'{}', b'{}'])\n"
        "import time\ntime.sleep(1)"
    )
    out = _kernel_run([forge, "print('next')"])
    assert any(isinstance(e, tuple) and e[0] == "KernelError" for e in out[0]), out
    assert out[1][0][0] == "NotRun"


def test_a_cell_past_the_time_limit_says_so():
    out = _kernel_run(["import time\ntime.sleep(30)", "print('next')"], timeout=3)
    assert ("CellTimeoutError", "time limit 3 s per cell reached (Execute.timeout)") in out[0], out[0]
    assert out[1] == ["next\n"]


def test_only_the_explicit_opt_out_runs_a_kernel_unsandboxed():
    probe = f"import os\nprint(os.path.exists({str(REPO / 'solutions')!r}))"
    assert _kernel_run([probe]) == [["False\n"]]
    config = Config({"Sandbox": {"i_understand_submissions_run_unsandboxed": True}})
    assert _kernel_run([probe], config) == [["True\n"]]


# ----------------------------------------------------------------------------- feedback


HIDDEN = "assert _secret_reference(x) == 1234.5678, 'hidden check'"


def _graded(source, gid):
    c = nbformat.v4.new_code_cell(source)
    c.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1, "grade_id": gid}
    return c


def _stream(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def test_feedback_carries_no_hidden_test_even_one_the_student_printed():
    import base64
    import html

    before = nbformat.v4.new_code_cell("print(open('leaked.py').read())")
    before.outputs = [_stream(f"found: {HIDDEN}\n")]
    quoted = nbformat.v4.new_code_cell("print(repr(src))")
    quoted.outputs = [nbformat.v4.new_output("execute_result", data={"text/html": html.escape(HIDDEN)})]
    test = _graded(f"assert f(2) == 4, 'visible check'\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS", "t1")
    test.outputs = [
        _stream("f was called with 1234.5678\n"),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="hidden check", traceback=["...", HIDDEN]),
    ]
    leak = nbformat.v4.new_code_cell("print(base64.b64encode(In[-2]))")
    leak.outputs = [_stream("LEAK:" + base64.b64encode(HIDDEN.encode()).decode() + "\n")]
    nb = nbformat.v4.new_notebook()
    nb.cells = [before, quoted, test, leak]
    nb, _ = FeedbackSanitizer().preprocess(nb, {})
    page = nbformat.writes(nb)
    assert "_secret_reference" not in page and "1234.5678" not in page and "LEAK:" not in page
    assert "it quotes a hidden test" in nb.cells[0].outputs[0]["text"]
    assert "it quotes a hidden test" in nb.cells[1].outputs[0]["text"]
    assert nb.cells[2].source == "assert f(2) == 4, 'visible check'"
    assert [o["traceback"] for o in nb.cells[2].outputs] == [
        ["AssertionError: hidden check  (a test in this cell failed; details are hidden)"]
    ]
    assert "ran after hidden tests" in nb.cells[3].outputs[0]["text"]


@pytest.mark.parametrize(
    "evalue, shown",
    [
        ("expected KL 3.125, got 2.5 (chapter 3, 'Common mistakes')", True),
        (base64.b64encode(HIDDEN.encode()).decode(), False),  # the hidden test, encoded
        (" ".join(HIDDEN), False),  # spaced out
        (HIDDEN.encode().hex()[:60], False),
        ("ok\n" + "line two", False),
        ("x" * 20 + " " + "y " * 200, False),  # too long
    ],
)
def test_a_failed_hidden_tests_message_is_shown_only_when_short_and_plain(evalue, shown):
    """The message of a failed test cell was produced by the submission's kernel: it may encode the tests."""
    test = _graded(f"assert f(2) == 4\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS", "t1")
    test.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=evalue, traceback=["..."])]
    nb = nbformat.v4.new_notebook()
    nb.cells = [test]
    nb, _ = FeedbackSanitizer().preprocess(nb, {})
    (line,) = nb.cells[0].outputs[0]["traceback"]
    assert (evalue in line) == shown and ("message not shown" in line) != shown, line


def test_feedback_keeps_outputs_that_quote_nothing_hidden():
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [_stream("assert x == 1  # my own check\n")]
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell, _graded("### BEGIN HIDDEN TESTS\nassert x == 1  # my own check\n### END HIDDEN TESTS", "t")]
    nb.cells[1].source = "assert x == 1  # my own check\n### BEGIN HIDDEN TESTS\n" + HIDDEN + "\n### END HIDDEN TESTS"
    nb, _ = FeedbackSanitizer().preprocess(nb, {})
    assert nb.cells[0].outputs[0]["text"] == "assert x == 1  # my own check\n"


# ----------------------------------------------------------------------------- grade.py and export


def test_grade_names_every_submission_that_is_not_a_folder(tmp_path):
    sub = tmp_path / "submitted"
    (sub / "alice" / "ex3").mkdir(parents=True)
    (sub / "bob").mkdir()
    (sub / "bob" / "ex3").write_text("not a folder")
    (sub / "carol.ipynb").write_text("{}")
    (sub / "dave").mkdir()
    found, problems = grade.find_submissions(str(sub), "ex3")
    assert found == ["alice"]
    assert any(f"{sub / 'bob' / 'ex3'} is not a folder" in p for p in problems), problems
    assert any(f"{sub / 'carol.ipynb'} is not a folder" in p for p in problems), problems
    assert len(problems) == 2 and (sub / "bob" / "ex3").read_text() == "not a folder"
    _, problems = grade.find_submissions(str(tmp_path / "nothing"), "ex3")
    assert problems and "is not a folder" in problems[0]
    with pytest.raises(SystemExit):
        grade.main(["ex3_gaussian_kl", "--jobs", "0"])


def test_lms_csv_layouts(tmp_path):
    from nbgrader.api import Gradebook

    os.environ["PATH"] = os.path.dirname(PY) + os.pathsep + os.environ["PATH"]  # nbgrader runs alembic

    with Gradebook(f"sqlite:///{tmp_path / 'gb.db'}") as gb:
        gb.add_assignment("ex1")
        gb.add_notebook("ex1", "ex1")
        gb.add_grade_cell("t", "ex1", "ex1", max_score=4, cell_type="code")
        gb.add_assignment("ex2")
        gb.add_notebook("ex2", "ex2")
        gb.add_grade_cell("t", "ex2", "ex2", max_score=2.5, cell_type="code")
        gb.add_student("ada", first_name="Ada", last_name="Lovelace", email="ada@example.org", lms_user_id="17")
        gb.add_student("bo")
        sub = gb.add_submission("ex1", "ada")
        sub.notebooks[0].grades[0].auto_score = 3
        gb.db.commit()
        canvas = rows(gb, "canvas", canvas_ids={"ex1": 901})
        moodle = rows(gb, "moodle")
    assert canvas == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ex1 (901)", "ex2"],
        ["Points Possible", "", "", "", "", "4", "2.5"],
        ["bo", "", "", "bo", "", "0", "0"],
        ["Lovelace, Ada", "17", "", "ada", "", "3", "0"],
    ]
    assert moodle == [
        ["Username", "Email address", "First name", "Last name", "ex1", "ex2"],
        ["bo", "", "", "", "0", "0"],
        ["ada", "ada@example.org", "Ada", "Lovelace", "3", "0"],
    ]


def test_a_submission_folder_over_the_disk_limit_is_not_copied_and_the_notebook_still_runs(tmp_path):
    folder = tmp_path / "ex1"
    folder.mkdir()
    (folder / "huge.bin").write_bytes(b"x" * (12 * 1024**2))
    out = _kernel_run(["import os\nprint(os.listdir('.'))"], Config({"Sandbox": {"disk_limit": "8MiB"}}), folder=folder)
    assert out == [["[]\n"]]
