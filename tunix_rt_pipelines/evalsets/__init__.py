"""Eval sets: items with an expected answer, a section, a category and a difficulty."""
