"""partnero-bridge: turns Ecwid orders, Stripe payments and sign-ups into Partnero calls.

This package is the shared Lambda layer. Handlers in ``functions/<source>/ingest.py`` and
``process.py`` stay thin and delegate here; pure mapping code lives beside the I/O adapters
that use it.
"""

__version__ = "0.1.0"
