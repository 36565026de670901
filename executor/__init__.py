"""The reference executor: a separate HTTP service speaking executor protocol v1 (docs/executor-protocol.md)."""
