"""Tests of the platform's own definitions: alerts and the dead-letter queue in the UI."""
