"""The categories resource."""
