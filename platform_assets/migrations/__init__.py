"""The platform's migrations, one module each, applied in id order by the guarded migration job."""
