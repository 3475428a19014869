"""Configuration: the option table (table.py), the parsers of one value (values.py), one stage's option group
(sections.py), the typed Config they validate into (model.py), bounded file reads (files.py) and the error a bad
value raises (errors.py).

Its modules stand on two floors (tests/test_layers.py): errors, files and values at floors 0-1, under every stage
that reads a file or parses a value; table and sections at floor 8 and model at floor 9, above the stages whose
settings they build. So this file imports nothing: importing ``config.errors`` must not load the stages.
"""
