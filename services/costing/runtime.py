"""Process settings of the costing service.

Python's cyclic garbage collector runs a young-generation pass every 700 new
container objects, and a full pass whenever enough of them survive. Re-costing a
backdated sale builds tens of thousands of short-lived rows and tuples at once (none
of them cyclic), and those passes took a tenth of its time, walking every object the
process holds. The engine's objects die with their transaction; collecting less
often costs a little memory, not correctness.
"""

from __future__ import annotations

import gc

#: Objects allocated between young-generation passes (default 700), and the default
#: ratios for the older generations scaled to match.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_garbage_collector() -> None:
    """Once, after start-up: what start-up allocated (modules, settings, pools) is moved
    out of the collector's sight, and passes run less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
