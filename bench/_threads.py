"""The thread-count timing loop shared by the throughput benchmarks (``bench/inception.py``, ``bench/c3d.py``)."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Iterator

import torch


def time_by_threads(run: Callable[[], object], count: int, threads: str, repeats: int) -> Iterator[dict[str, float]]:
    """For each thread count of ``threads`` ("1,2"): ``run()`` (which handles ``count`` items) timed ``repeats``
    times; yields {"threads", "per_s_best", "per_s_median" (items per wall second), "cpu_s_per_item"}."""
    for n in (int(t) for t in threads.split(",")):
        torch.set_num_threads(n)
        walls, cpus = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        yield {"threads": n, "per_s_best": count / min(walls), "per_s_median": count / statistics.median(walls),
               "cpu_s_per_item": min(cpus) / count}
