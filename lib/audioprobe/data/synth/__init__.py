"""The embedded corpus: every dataset synthesised offline, in its official layout."""
