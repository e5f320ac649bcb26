"""Instructor material: the reference solution and the grading tools. Not part of the student kit."""
