"""Defect probes of the contract's weak spots, and their asyncio driver."""
