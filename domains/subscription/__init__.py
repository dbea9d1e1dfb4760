"""Subscriptions (the customer's line): state, price snapshot, billing period and bundle balances."""
