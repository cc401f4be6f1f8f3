"""``python -m pal4vst``: one module per command."""
