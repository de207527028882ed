"""Partsemble's own common package: settings, event schemas, money, db, broker, logging."""
