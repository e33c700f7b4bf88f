"""The one exception type for bad user input (files, modes, sizes, config values)."""


class UserError(ValueError):
  """Bad input from the user; `main` prints it as one line and exits non-zero."""
