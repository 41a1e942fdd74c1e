"""Admin REST API (Flask + flask-smorest)."""
