"""Recommender service (issue 4)."""
