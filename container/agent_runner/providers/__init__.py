"""Agent backends behind one contract (see providers/base.py): `claude` and `echo`."""
