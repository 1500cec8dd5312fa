"""What every stage runs on: params, one-line errors, atomic writes, digests, provenance, headline
metrics, training logs and the pinned numeric environment."""
