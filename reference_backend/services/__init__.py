"""What the routes call: uploads, background processing, rate limits."""
