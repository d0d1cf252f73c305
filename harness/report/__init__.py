"""Reports rendered from stored results (``results.json``), never from live objects."""
