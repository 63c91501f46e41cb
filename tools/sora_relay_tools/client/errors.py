"""What the client raises: each something the user can act on."""


class RelayError(Exception):
    """Something the user can act on: a missing stack, an invalid request, an unknown job."""


class StackNotFound(RelayError):
    pass


class JobNotFound(RelayError):
    pass


class WaitTimedOut(RelayError):
    pass


class NotArchived(RelayError):
    """The job has no video (yet, or ever: it failed), or no thumbnail."""


class CannotCancel(RelayError):
    """The request reached the provider (or may have): it runs to its end."""
