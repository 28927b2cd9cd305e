"""Reusable Keras building blocks."""
