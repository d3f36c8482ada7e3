"""Torch-free contracts every layer shares: the cell config, the catalogue of models and data sets,
the result records, the algorithm registry, shared file names and the one atomic-write helper.

    config      CellConfig: one training run, typed and validated; its content hash cell_id
    catalog     model and dataset names, training-set sizes, the batching rule
    registry    a user's models and data sets (register_model / register_dataset)
    result      TrainResult / EpochRecord: what a training run returns
    algorithms  the algorithm registry (name -> torch builder, pass cost)
    names       file and variable names shared across process boundaries
    atomic      atomic_write: temp file, fsync, rename, fsync of the directory

No torch, no ray, no pyarrow: the sweeper, the store and analysis import these freely.
"""
