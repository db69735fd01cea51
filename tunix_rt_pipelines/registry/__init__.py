"""Model registry: immutable content-addressed versions, aliases moved only through recorded gates."""
