"""Sellers of a venue: the roster devices sign in against offline (:mod:`server.sellers.service`)."""
