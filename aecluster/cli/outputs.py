"""The command line's guards around its outputs: no two outputs of a command on one file, none
on one of its inputs, and SIGTERM ending the work as Ctrl-C does, so that nothing half-written
is left behind."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from aecluster.atomic import check_output, same_file
from aecluster.errors import UserInputError


def guard_outputs(outputs: Iterable[tuple[str | os.PathLike, str]], inputs: Iterable[str | os.PathLike | None],
                  force: bool = False) -> None:
    """Refuse outputs that would destroy a file, before any work.

    Parameters
    ----------
    outputs : iterable of (path, kind)
        The command's outputs, kind a key of `atomic.OUTPUT_SUFFIXES`.
    inputs : iterable of str, os.PathLike or None
        The command's input files (None entries are skipped).
    force : bool
        Allow names whose extension contradicts their kind (--force).

    Raises
    ------
    UserInputError
        When two outputs are one file, or one fails `atomic.check_output`.
    """
    inputs = list(inputs)
    outputs = list(outputs)
    for index, (output, _) in enumerate(outputs):
        for other, _ in outputs[index + 1:]:
            if same_file(output, other):
                raise UserInputError(f"{other}: is also the output {output}; give each output its own path")
    for output, kind in outputs:
        check_output(output, kind, inputs, force)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM ends the work as Ctrl-C does, so `atomic.atomic_path` removes its
    temporary file; training installs its own handler on top (it stops between steps).

    Outside the main thread, where no signal handler can be installed, nothing changes. The
    previous handler (or the default) is restored on leaving the block.

    Yields
    ------
    None
    """

    def handle(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous, installed = signal.signal(signal.SIGTERM, handle), True
    except ValueError:
        previous, installed = None, False
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
