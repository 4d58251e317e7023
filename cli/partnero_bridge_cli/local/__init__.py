"""The local stack: template.yaml's routes, queues, tables and secrets, run without Docker."""
