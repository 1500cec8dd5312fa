"""Thin DVC stage commands: parse args, load their params group, call lib, write atomically."""
