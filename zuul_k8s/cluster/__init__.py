"""Cluster operations: the only code that imports the `kubernetes` client.

Every module here imports it lazily (inside functions), so that `render` and
`validate` never pay for it. Pure parts (ordering, judgement, object building)
take and return plain dicts; I/O goes through `client.Cluster`.
"""
