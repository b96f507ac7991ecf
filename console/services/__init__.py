"""Business operations: plain functions that take the actor, change the session and audit."""
