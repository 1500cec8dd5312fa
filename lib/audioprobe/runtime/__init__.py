"""What every stage process runs on: the pinned numeric environment."""
