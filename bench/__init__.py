"""`make bench` (``python -m bench``): one module per section, shared parts in ``common``."""
