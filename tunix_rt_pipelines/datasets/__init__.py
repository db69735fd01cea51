"""Versioned dataset snapshots, SFT rendering and export."""
