"""The `cifar-engine` command line (click). It parses options and calls the engine's API."""
