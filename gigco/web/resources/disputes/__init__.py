"""The disputes resource."""
