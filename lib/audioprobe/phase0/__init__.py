"""phase0: is there reusable structure in codec latent dynamics? (definitions: README.md in this package)."""
