"""The storefront and dashboard: static files served by the API."""
