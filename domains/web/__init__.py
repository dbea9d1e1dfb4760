"""The web doors' state: sessions, one-time login codes, rate counters (schema `web`)."""
