"""The one exception type the kit raises for bad input."""


class GemmaKitError(ValueError):
    """Bad input: the message names the file, key or value and what was expected.

    Subclasses ValueError so callers that already guard against ValueError keep working.
    """
