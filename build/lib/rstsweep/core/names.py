"""Names shared across process boundaries, so the torch side (trainer) and the ray side (trial,
driver) agree without importing each other: the trainer's files in its work directory and the
test hook's environment variable."""

CHECKPOINT_NAME = "checkpoint.pt"  # the trainer's last epoch checkpoint, in its work directory
FINAL_WEIGHTS_NAME = "final.pt"  # the trained weights, written when a run ends
# Test hook: when this names a marker file path, the first trial to finish epoch 1 creates the
# marker and kills its own worker process (SIGKILL-like, no cleanup), once per marker.
CRASH_ENV = "RSTSWEEP_TEST_CRASH_ONCE"
