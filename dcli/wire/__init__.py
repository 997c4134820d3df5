"""What client and server share: generated messages (`dcli.v1`), the error hierarchy, name rules."""
