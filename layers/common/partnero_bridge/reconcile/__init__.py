"""Reconciliation: does Partnero hold what the sources say is due, for every payment of a
window? The same pure decision code the webhooks use decides each payment's target from its
state read now; ``compare`` tells the difference by kind; ``run`` lists a window
resumably; ``service`` builds a paced runtime and runs a whole source (every Ecwid store).
See docs/reconcile.md."""
