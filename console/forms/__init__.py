"""One form class per screen."""
