"""PostgreSQL layer: embedded server, warehouse resource, IO manager. All SQL lives here."""
