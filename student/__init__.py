"""The student's part of MicroKWS: fill in the TODOs of these files (see Flow.ipynb)."""
