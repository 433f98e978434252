"""Command-line entry points (the only layer that knows Hydra and the file system)."""
