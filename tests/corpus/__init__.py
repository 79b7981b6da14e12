"""A recorded corpus of requests and responses on the shipped MNIST model (record.py)."""
