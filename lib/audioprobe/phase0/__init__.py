"""phase0: is there reusable structure in codec latent dynamics? (EXPERIMENTS.md §2)."""
