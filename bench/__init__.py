"""Hookline's benchmark harness: raw HTTP, the naive Temporal floor, and Hookline side by side."""
