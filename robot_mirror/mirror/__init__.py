"""The mirror network: one recurrent core that encodes an arm's own movements
while it acts and its partner's observed movements while it watches, with the
same weights (see docs/mirror.md)."""
