"""A training run: its settings (`config`), the loop with its plan and observers
(`loop`), the whole run from config to result (`run`), and the run folder with its claim,
metrics and checkpoints (`folder`)."""
