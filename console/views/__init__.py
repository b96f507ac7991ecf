"""One blueprint per area; each view loads, authorizes, validates, calls a service, responds."""
