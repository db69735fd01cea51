"""Evaluation: judges over stored predictions, scorecards, stored evaluations, the leaderboard."""
