"""The one exception type for problems a user can cause and fix."""


class ToolkitError(Exception):
    """Bad input, missing data or an unusable model: shown as one line, no traceback."""
