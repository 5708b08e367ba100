"""The API in code: routes, payloads, the WAV factory, accounts and tokens."""
