"""The `toolkit` command line: thin click commands over the `toolkit` library."""
