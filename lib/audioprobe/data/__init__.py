"""Dataset layouts (official ones only), their sources, and the embedded synthesizer."""
