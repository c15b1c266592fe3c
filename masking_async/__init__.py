"""Create, update and expire number-masking sessions at volume."""
