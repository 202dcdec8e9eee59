"""Data exchange, Flask-free: reading the bureau's files (formats, archives), importing them through the use cases
(importer) and writing layers out (exporter)."""
