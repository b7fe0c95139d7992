"""The one exception type a user can cause.

Every problem a user can fix (a missing file, wrong columns, a locked database…)
is raised as `UserError` with a message that names the problem and the fix; the
CLI prints it on one line and exits non-zero, never with a traceback.
"""


class UserError(Exception):
    """A problem in the input or the environment that the user can fix."""


class ToolFailed(Exception):
    """A tool the pipeline runs in-process (dbt) failed and has printed why: exit code 1, as the tool's own."""
