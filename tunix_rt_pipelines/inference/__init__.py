"""Inference: batched generation on either backend and the predictions asset."""
