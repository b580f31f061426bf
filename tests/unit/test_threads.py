import numpy as np  # noqa: F401  (loads the BLAS whose thread pool is limited)
from threadpoolctl import threadpool_info, threadpool_limits

from aecluster.threads import single_threaded


def test_single_threaded_limits_every_pool_to_one_thread_and_restores_the_limits():
    with threadpool_limits(limits=2):
        before = [pool["num_threads"] for pool in threadpool_info()]
        assert before and max(before) == 2
        with single_threaded():
            assert {pool["num_threads"] for pool in threadpool_info()} == {1}
        assert [pool["num_threads"] for pool in threadpool_info()] == before
