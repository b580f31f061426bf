"""Thread limits that make numeric results independent of the machine's thread count."""

from __future__ import annotations

from typing import Any


def single_threaded() -> Any:
    """A context in which BLAS and OpenMP run one thread: their sums then come out bit-identical
    whatever OMP_NUM_THREADS is (KernelPCA's products differ in the last bits between thread
    counts, and t-SNE magnifies that into different groups), so predictions do not depend on it.

    Returns
    -------
    threadpoolctl.threadpool_limits
        The context manager; the previous limits come back on leaving it.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
