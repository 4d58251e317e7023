"""The ledger: what the bridge has told Partnero, per customer, order and payment."""
