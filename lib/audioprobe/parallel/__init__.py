"""Data-parallel and multi-process execution: device choice, torchrun sessions and the launcher, side-by-side runs."""
