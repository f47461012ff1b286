"""This project's migrations: one module each (``mNNNN_<name>.py`` defining ``MIGRATION``), applied
in id order by the guarded migration job, after the sample's chain where that applies (see
docs/migrations.md)."""
