"""CRM domain: customers extracted incrementally from the source schema."""
