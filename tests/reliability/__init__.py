"""Reliability and security: hostile inputs, schema fuzzing, overload, shutdown, faults."""
