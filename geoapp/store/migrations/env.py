"""Alembic's environment for the PostGIS store: migrations run on the connection the store hands over.

``geoapp.store.postgis.upgrade`` (and ``flask --app wsgi geoapp db upgrade``) call Alembic with a
SQLAlchemy connection in ``config.attributes["connection"]``, inside the caller's transaction.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True, version_table="geoapp_alembic_version")
with context.begin_transaction():
    context.run_migrations()
