"""Response and request shapes of the API, one module per domain (for OpenAPI)."""
