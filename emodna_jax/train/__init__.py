"""Training: the state, the pure step, compiled parallel steps, checkpoints, logs and the host loop."""
