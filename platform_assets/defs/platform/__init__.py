"""Tables the platform itself keeps: dead letters and ingestion accounting."""
