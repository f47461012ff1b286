"""Tests of what defs/datasets builds from a spec: range runs, checks, schedules, sensors."""
