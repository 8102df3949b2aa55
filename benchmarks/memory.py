"""Peak memory of a block of code on a CPU, for the benchmark's tables.

    with PeakRSS() as mem:
        ...                   # the code to measure
    mem.mib                   # peak resident memory above the start of the block, MiB (or None)

(On a GPU, torch's own ``torch.cuda.max_memory_allocated`` does this job.)
"""

import ctypes
import threading
import time

__all__ = ["PeakRSS"]


def _status_kib(field):
    """A field of /proc/self/status (Linux), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _trim_heap():
    """Hand freed heap memory back to the OS (glibc's malloc_trim), so that a run does not quietly
    reuse what an earlier run freed and its peak is measured from the same footing."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows): nothing to do
        pass


class PeakRSS:
    """Peak resident memory of this process while the block runs, above what it held at the start:
    ``mib`` after the block (MiB; None where it cannot be measured).

    On Linux this is the kernel's own high-water mark (VmHWM), reset on entry through
    /proc/self/clear_refs: exact, and nothing runs alongside the timed code. Elsewhere a thread
    samples the resident size every 2 ms with psutil, if it is installed.
    """

    def __enter__(self):
        _trim_heap()
        self.mib, self._thread, self._stop, self._read_peak = None, None, False, None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current resident size
            self.start = _status_kib("VmRSS") * 1024
            self._read_peak = lambda: _status_kib("VmHWM") * 1024
        except OSError:
            try:
                import psutil
            except ImportError:
                return self
            proc = psutil.Process()
            self.start = self.peak = proc.memory_info().rss
            self._rss = lambda: proc.memory_info().rss
            self._read_peak = lambda: max(self.peak, self._rss())
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self):
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop = True
        if self._thread is not None:
            self._thread.join()
        if self._read_peak is not None:
            self.mib = max(0, self._read_peak() - self.start) / 2**20
