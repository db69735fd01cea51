"""Seeded generators of real step-by-step traces, the reasoning-gym importer and the dev set."""
