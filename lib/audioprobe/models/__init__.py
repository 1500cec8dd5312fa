"""Assembled networks built from audioprobe.cells."""
