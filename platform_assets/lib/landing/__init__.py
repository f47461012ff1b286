"""Landing files: the seeded sample-data generator and the raw file reader."""
