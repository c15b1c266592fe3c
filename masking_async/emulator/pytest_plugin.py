"""pytest fixtures for the Masking API emulator (filled in as the emulator lands)."""
