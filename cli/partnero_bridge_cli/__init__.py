"""The ``partnero-bridge`` command: the no-Docker local stack and operator tools."""
