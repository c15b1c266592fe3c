"""batch part of masking_async."""
