"""The payments resource."""
