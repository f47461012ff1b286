"""The sample data's migration chain: applied only where the sample's datasets are declared
(``lib/migrations/chains.py``), so a deployment of its own datasets never runs it."""
