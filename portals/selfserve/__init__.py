"""The self-serve portal for customers (port 9001): app.py."""
