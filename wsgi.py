"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi``."""

from geoapp.web import create_app

app = create_app()
