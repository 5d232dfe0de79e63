"""tickvault's benchmark suite: tickvault against its peers, side by side, measured not asserted.

Run it with ``python -m bench`` (``make bench``): ``--quick`` takes a few minutes, the
default full size is 500 symbols x one year of 1-minute bars (about 49 M rows) from the
``sim`` provider. Each workload (bulk ingest, symbol-year read warm and cold, latest bars,
bytes per bar) runs tickvault's embedded store, ArcticDB (LMDB), DuckDB and plain Parquet in
the same process on the same data, and the run is written to ``bench/results/<size>.json``
and, for the full size, to ``docs/benchmarks.md``. ``python -m bench --compare OLD NEW``
prints the regressions between two runs. See ``docs/benchmarks.md`` for the method.
"""

from bench._cli import main, run
from bench._workloads import WORKLOADS

__all__ = ["WORKLOADS", "main", "run"]
