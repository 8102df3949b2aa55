"""The written-out training step on buffers that stay in place, replayed as a CUDA graph on a GPU.

``vc.train``'s common case (see ``backprop.py``) takes one step per batch: gather the batch, run
the forward and backward passes by hand, update with fused Adam, add the batch's sums to the
epoch's total. That is about 55 kernels. On a CPU their launch costs nothing next to the matrix
products; on a GPU, launching a kernel from Python takes about as long as a small kernel runs, so
an eager loop would be bound by launches, not by the GPU. ``Steps`` therefore reads only tensors
that never move (the batch indices, the running sums, the parameters, their gradients and Adam's
state): on CUDA, after ``WARMUP_STEPS`` warm-up steps on a side stream, it captures one full-batch
step as a CUDA graph and replays it, one index copy and one launch per step.

The CPU runs the same Python eagerly, as does the GPU for the epoch's last, shorter batch, for a
KL weight that changes from step to step (it is a number baked into the captured kernels) and for
any optimizer but ``FusedAdam``. If capture fails, training warns and goes on eagerly.
"""

import contextlib
import functools
import warnings

import torch

from .backprop import FusedAdam

__all__ = ["Steps", "cuda_graph", "WARMUP_STEPS"]

WARMUP_STEPS = 3  # eager steps before capture, as torch's CUDA-graph recipe asks (lazy handles, workspaces)


@functools.cache
def _side_stream(index):
    """The one stream that every warm-up and capture on CUDA device ``index`` runs on: cuBLAS keeps
    a workspace (tens of MiB) for every stream it has run on, so a new stream per ``vc.train`` call
    would hold more memory after each call."""
    return torch.cuda.Stream(index)


def cuda_graph(fn):
    """Capture ``fn()`` (CUDA kernels only, no host sync) on the current device as a CUDA graph;
    return its replay. Capturing records the kernels without running them."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=_side_stream(torch.cuda.current_device())):
        fn()
    return graph.replay


class Steps:
    """``steps(idx, beta)``: one training step on the rows ``idx`` of ``x`` with KL weight ``beta``.

    Args:
        manual: the ``ManualELBO`` of the model; optimizer: its optimizer (``FusedAdam`` to capture).
        x: (N, D) resident data; x_in: (N, k) the columns ``manual.inputs`` of the encoder's input
            (x, or (x, y) side by side), or None; y: (N, C) labels of a conditional model, or None.
        batch_size: the size of a full batch (the one that is captured).
        dynamic_binarization: draw each batch as Bernoulli(x).
        capture: ``cuda_graph`` to capture full-batch steps, or None to run every step eagerly.
    ``sums`` holds (loss, log p(x|z), KL) summed over the examples seen since it was last zeroed.
    """

    def __init__(
        self, manual, optimizer, x, x_in=None, *, y=None, batch_size, dynamic_binarization=False, capture=None
    ):
        self.manual, self.optimizer = manual, optimizer
        self.x, self.x_in, self.y, self.binarize = x, x_in, y, dynamic_binarization
        self.sums = torch.zeros(3, dtype=x.dtype, device=x.device)  # (3,), read once an epoch
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=x.device)  # (B,) the captured step's rows
        self.fused = isinstance(optimizer, FusedAdam)
        self.capture = capture if self.fused else None  # only FusedAdam's update is free of host state
        self.replay = None  # the captured step, once there is one
        self.beta = None  # the KL weight it was captured with
        self.warm = 0  # full-batch steps run so far through the buffers, before capture

    def _body(self, idx, beta):
        """One step's device work: reads idx, x, beta and the model's tensors; adds into sums."""
        xb = self.x.index_select(0, idx)  # (B, D), a fresh cache-hot block
        xb_in = None
        if self.binarize:  # the resampled batch's columns are gathered inside manual.step
            xb = torch.bernoulli(xb)
        elif self.x_in is not None:
            xb_in = self.x_in.index_select(0, idx)  # (B, k)
        yb = None if self.y is None else self.y.index_select(0, idx)  # (B, C)
        terms = self.manual.step(xb, beta, x_in=xb_in, y=yb)  # (3,) batch sums; gradients into .grad
        if self.fused:
            self.optimizer.update()
        else:
            self.optimizer.step()
        self.sums.add_(terms)

    def __call__(self, idx, beta):
        if self.capture is None or idx.shape[0] != self.idx.shape[0]:
            self._body(idx, beta)
        else:
            self.idx.copy_(idx)
            self._static_step(beta)
        if self.fused:
            self.optimizer.tick()

    def _static_step(self, beta):
        if self.replay is not None and beta == self.beta:
            self.replay()
        elif self.replay is not None or self.warm < WARMUP_STEPS:
            self._warm_up(beta)
        else:
            self._capture(beta)

    def _warm_up(self, beta):
        self.warm += 1
        if not self.x.is_cuda:
            return self._body(self.idx, beta)
        side, main = _side_stream(self.x.device.index), torch.cuda.current_stream(self.x.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            self._body(self.idx, beta)
        main.wait_stream(side)

    def _capture(self, beta):
        try:
            on_device = torch.cuda.device(self.x.device) if self.x.is_cuda else contextlib.nullcontext()
            with on_device:  # capture on the data's GPU
                self.replay = self.capture(lambda: self._body(self.idx, beta))
        except Exception as err:  # an op or driver that cannot be captured: train eagerly instead
            msg = f"could not capture the training step as a CUDA graph ({err}); running it eagerly"
            warnings.warn(msg, RuntimeWarning, stacklevel=5)  # at the caller of vc.train
            self.capture = None
            self._body(self.idx, beta)
            return
        self.beta = beta
        self.replay()  # this step: capture only recorded it
