"""The single error type raised by the embedded infrastructure."""


class EmbeddedError(RuntimeError):
    """An embedded broker, database or mail sink could not be started or stopped.

    The message is meant for a human: it says what failed and, where a child
    process was involved, ends with the last lines of that child's log.
    """
