"""Root pytest configuration: keeps the Locust file out of collection (importing it patches gevent)."""

collect_ignore = ["load_test.py"]
