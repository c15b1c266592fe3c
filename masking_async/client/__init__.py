"""client part of masking_async."""
