"""HTTP layer: dependencies, routes, middleware."""
