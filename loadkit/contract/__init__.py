"""What the tool knows about the API, its accounts and its scenarios."""
