"""Retention policies (placeholder until the rules land)."""


def chooser(policy):
    raise NotImplementedError
