"""Hyperparameter sweeps: a YAML spec, Ray Tune trials, one dynamic partition per trial."""
