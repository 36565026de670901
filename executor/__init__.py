"""The reference executor: its own HTTP service speaking executor protocol v1 (docs/executor-protocol.md).

It imports nothing from the control plane and keeps its state in memory.
"""
