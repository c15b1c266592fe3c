"""emulator part of masking_async."""
