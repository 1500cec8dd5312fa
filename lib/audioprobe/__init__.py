"""audioprobe: four audio-representation experiments as one DVC pipeline."""

__version__ = "0.1.0"
