"""The one integer seed that a scikit-learn style `random_state` stands for."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

SEED_LIMIT = 2**32  # seeds lie in 0..SEED_LIMIT-1, what torch, numpy and scikit-learn all accept


def integer_seed(random_state: int | np.random.RandomState | None) -> int:
    """The integer seed of `random_state`, drawn once per `fit` by the estimators that take one.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None
        An integer is the seed itself (so `random_state=0` seeds as it always has); a
        `RandomState` gives the next integer it draws, and None the next integer that numpy's
        global random state draws (`sklearn.utils.check_random_state`), so a fit with either is
        reproducible only as far as that generator is.

    Returns
    -------
    int
        A seed in 0..2**32-1.

    Raises
    ------
    ValueError
        When `random_state` is none of these (`check_random_state`'s error), or an integer
        outside 0..2**32-1.
    """
    if isinstance(random_state, Integral):
        if not 0 <= random_state < SEED_LIMIT:
            raise ValueError(f"random_state {random_state} is not a seed in 0..{SEED_LIMIT - 1}")
        return int(random_state)
    return int(check_random_state(random_state).randint(SEED_LIMIT, dtype=np.int64))
