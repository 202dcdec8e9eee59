"""geoapp: the one map (一张图) of a district city-management bureau.

The package root loads nothing: ``geoapp.core`` and ``geoapp.store`` are Flask-free, ``geoapp.web`` is the
Flask application (``geoapp.web.create_app``).
"""

__version__ = "0.2.0"
