"""asv benchmarks of cifar-engine: one module per kernel module, plus whole steps and epochs."""
