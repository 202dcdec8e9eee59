"""Synthetic demo data for geoapp; nothing in this package describes a real place."""
