"""The metrics' input error, in a module of its own so that the statistics and the registry need no torch."""


class FVDError(ValueError):
    """Bad evaluation input (shape, dtype, frame count, features file mismatch); the message names it."""
