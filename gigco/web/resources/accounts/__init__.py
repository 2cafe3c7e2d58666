"""The accounts resource."""
