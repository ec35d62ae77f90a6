"""The kubectl plugin ``kubectl-aevm``: ``render`` decides what to show (pure), ``main`` talks to the cluster."""
