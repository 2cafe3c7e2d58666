"""The notifications resource."""
