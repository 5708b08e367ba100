"""The modules that import Locust, gevent or Locust's Flask app (and nothing else does)."""
