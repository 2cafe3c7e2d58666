"""The signals resource."""
