"""PostgreSQL layer: the embedded server, the warehouse resource, the IO manager. All SQL lives here."""
