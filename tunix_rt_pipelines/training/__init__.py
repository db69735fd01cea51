"""Training: configs, one token stream, the JAX and PyTorch backends, the checkpoint asset."""
