"""Map layer definitions: one module per layer, listed in ``registry.py``."""
