"""The real UI, driven in a headless Chromium."""
