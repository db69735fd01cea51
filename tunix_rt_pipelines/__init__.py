"""tunix-rt-pipelines: reasoning traces in, evaluated and registered small LLMs out, all as Dagster assets."""

__version__ = "0.1.0"
