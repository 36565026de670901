"""Plugins: the functions agents may call through the tool gateway (``base``: the interface; ``registry``:
which are installed and enabled; ``http_fetch`` and ``db_query``: the built-in ones)."""
