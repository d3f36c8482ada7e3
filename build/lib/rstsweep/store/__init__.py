"""The Parquet result store: schema, row builders, part files and `Store`. pyarrow/pandas only.

schema   the declared pyarrow schema of every table
rows     cell + TrainResult -> rows; the draws bit-packing
location where a store lives: a local directory or an s3:// / gs:// prefix (pyarrow filesystems)
files    part files: unique names, whole-file writes, schema-aware reads, unreadable-part errors
store    `Store`, `open_store`: results, failures, membership, heartbeat; deduped reads; compaction
verify   `rstsweep verify [--repair]`: part files and trials/epochs/draws consistency; quarantine
"""

from rstsweep.store.store import Store, open_store, read_table

__all__ = ["Store", "open_store", "read_table"]
