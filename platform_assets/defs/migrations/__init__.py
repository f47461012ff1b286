"""The guarded migration job."""
