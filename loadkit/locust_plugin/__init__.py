"""Everything that imports Locust or gevent: hooks, options, run, users, shapes, web UI."""
