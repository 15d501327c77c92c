"""Error types shared by every package. Library code raises these; CLIs turn them into one line + exit 2."""


class UserError(Exception):
    """Bad input that the user can fix; the message is one line that names the fix."""


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, foreign, too new, or does not fit its architecture."""
