"""detect lane: speech vs non-speech on short noisy clips (dataset, hygiene, baselines, evaluation)."""
