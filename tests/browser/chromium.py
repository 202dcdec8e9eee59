"""How the tests and the benchmark run Debian's headless Chromium, and when the one map is ready."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# no sandbox or GPU in a container, and no background traffic (this machine reaches no other host)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the map is ready when every layer shown has been fetched for the view and drawn (one that starts unticked, as
# the cases, waits to be asked)
READY = (
    "() => window.geoapp && window.geoapp.state"
    " && Object.values(window.geoapp.state.layers).every(l => !l.visible() || (l.requests > 0 && !l.loading))"
)
