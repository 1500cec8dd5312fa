"""For people, not stages: the `audioprobe` command and the offline plots template."""
