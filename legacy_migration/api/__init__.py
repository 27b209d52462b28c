"""The migration over HTTP, read-only: runs and issues, reconciliations with their findings, shadow reads.

Also the read-source switch of the customer, order and invoice detail endpoints (read_sources.py).
"""
