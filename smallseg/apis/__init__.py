"""Logic behind tools/*.py: config handling, training, testing, results."""
from ..utils.errors import UserError, cli_entry

__all__ = ['UserError', 'cli_entry']
