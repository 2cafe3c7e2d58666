"""The lifecycle policies resource."""
