"""From evidence to a cause: log entries, categories and their vocabularies, templates, root
causes, remedies, the connection budget."""
