"""The run folder and its reports: schema, writer, redaction, render, charts, compare."""
