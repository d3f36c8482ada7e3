"""The Parquet result store: schema, row builders, part files and `Store`. pyarrow/pandas only.

schema   the declared pyarrow schema of every table
rows     cell + TrainResult -> rows; the draws bit-packing
files    part files: unique names, atomic writes, schema-aware reads
store    `Store`: write results, failures, membership, heartbeat; deduped reads; compaction
"""

from rstsweep.store.store import Store, read_table

__all__ = ["Store", "read_table"]
