"""Shared infrastructure: the home folder, the database and the content-addressed artefact store."""
