"""Configuration, security, database and the error type every layer raises."""
