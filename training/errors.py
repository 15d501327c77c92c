"""Error types shared by every package. Library code raises these; CLIs turn them into one line + exit 2."""


class UserError(ValueError):
    """Bad input that the user can fix; the message is one line that names the fix. A ValueError, so the Python
    API's callers catch it as they catch any bad argument."""


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, foreign, too new, or does not fit its architecture."""
