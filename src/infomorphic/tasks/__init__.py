"""Self-organisation tasks: unsupervised bars, associative memory, capacity sweeps."""
