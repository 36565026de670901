"""The reference executor: its own HTTP service speaking executor protocol v1."""
