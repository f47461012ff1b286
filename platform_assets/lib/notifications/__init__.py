"""Telling people what the platform noticed: alerts through a pluggable notifier resource."""
