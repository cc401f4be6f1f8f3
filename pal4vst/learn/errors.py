"""The one error of the training engine: library code raises it, only command lines exit."""


class LearnError(ValueError):
    """A training job that cannot run as asked (a bad setting, a dataset with problems); the
    message says what and where."""
