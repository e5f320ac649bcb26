"""The reference implementation of every file in student/ (same names). Never imported by the kit."""
