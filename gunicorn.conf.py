"""gunicorn settings for `make run`: load the app and its layer indexes once, then fork the workers."""

import gc
import os
import sys

bind = f"127.0.0.1:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("GEOAPP_WORKERS", "2"))
worker_class = "gthread"
threads = 4
preload_app = True
accesslog = "-"


def when_ready(server):
    # in the master, before the fork: workers share the built indexes copy-on-write
    service = server.app.wsgi().extensions["geoapp"]
    service.warm()
    service.store.close()  # the snapshots hold no connection; none may cross the fork
    # objects made so far are never collected: the collector would write to every page of them in each
    # worker and undo the sharing (edits arrive as small deltas and leave these pages alone)
    gc.freeze()


def post_fork(server, worker):
    # a thread answering a read should not wait the interpreter's default 5 ms for one handling an edit
    sys.setswitchinterval(0.001)
