"""Configuration: the option table (table.py, the only place an option is declared, each row with its parser from
parsers.py), the command line built from it (cmdline.py), the parsers of one value (values.py), one stage's option
group (sections.py), the typed Config they validate into (model.py), bounded file reads (files.py) and the error a bad
value raises (errors.py).

Its modules stand on two floors (tests/test_layers.py): errors, files and values at floors 0-1, under every stage
that reads a file or parses a value; parsers, table, cmdline and sections at floors 8-10 and model at 11, above the
stages whose settings they build. So this file imports nothing: importing ``config.errors`` must not load the stages.
"""
