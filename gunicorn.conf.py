"""gunicorn settings for `make run`: load the app and its layer indexes once, then fork the workers."""

import os

bind = f"127.0.0.1:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("GEOAPP_WORKERS", "2"))
worker_class = "gthread"
threads = 4
preload_app = True
accesslog = "-"


def when_ready(server):
    # in the master, before the fork: workers share the built indexes copy-on-write
    service = server.app.wsgi().extensions["geoapp"]
    service.engine.warm()
    service.store.close()  # the snapshots hold no connection; none may cross the fork
