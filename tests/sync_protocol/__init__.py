"""Tests of the sync protocol package (wire format, signatures, hash chain, vectors)."""
