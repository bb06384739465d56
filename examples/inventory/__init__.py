"""A small inventory service that leaks database connections the way a production outage did.

It is never run: it exists to be checked (``connlint check examples/``). Every module mixes functions
that leak with functions that release their connections correctly; a comment on each leaking function
says how it leaks.
"""
