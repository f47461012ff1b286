"""The dead-letter queue: letters and accounting written with the rows, replay, export,
and the partition audit the checks read.
"""
