"""The Flask-free core: layer definitions, validation, coordinate systems, queries, permissions, accounts,
editing use cases and statistics. Nothing here imports Flask, Folium or Werkzeug."""
