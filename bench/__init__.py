"""Benchmarks, run as scripts: ``python bench/NAME.py`` (a package only so that type checkers
name ``bench/jwt.py`` ``bench.jwt`` instead of letting it shadow pyjwt's ``jwt``)."""
