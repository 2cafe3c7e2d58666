"""The opportunities resource."""
